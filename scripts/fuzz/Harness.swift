// libFuzzer entry point for scripts/fuzz.sh: compiled together with Sources/VAECore (one module), never
// part of the SwiftPM package. The first byte of an input chooses the reader (`FuzzTarget`), the rest
// is the file; VAEC_FUZZ_TARGET=name pins one reader instead.
#if canImport(Glibc)
import Glibc
#endif
import Foundation

nonisolated(unsafe) private var pinned: FuzzTarget? = ProcessInfo.processInfo.environment["VAEC_FUZZ_TARGET"].flatMap(FuzzTarget.init)

@_cdecl("LLVMFuzzerTestOneInput")
public func vaecFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let targets = FuzzTarget.allCases
    let target = pinned ?? targets[Int(data[0]) % targets.count]
    target.run(Array(UnsafeBufferPointer(start: data + 1, count: size - 1)))
    return 0
}

/// With VAEC_FUZZ_WRITE_SEEDS=DIR, writes good files of the current formats (a compiled program, a
/// checkpoint and a training state), each prefixed with its target's byte, and exits.
@_cdecl("LLVMFuzzerInitialize")
public func vaecFuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["VAEC_FUZZ_WRITE_SEEDS"] else { return 0 }
    do {
        let trainer = FuzzContext.shared.trainer
        let temp = directory + "/.state"
        try TrainingState.save(trainer, to: temp)
        let program = try trainer.program.encoded()
        let checkpoint = [UInt8](try Data(contentsOf: URL(fileURLWithPath: temp + "/" + Checkpoint.fileName)))
        let state = [UInt8](try Data(contentsOf: URL(fileURLWithPath: temp + "/" + TrainingState.fileName)))
        let seeds: [(FuzzTarget, [UInt8])] = [(.program, program), (.programBody, program), (.checkpoint, checkpoint),
                                             (.safetensors, checkpoint), (.trainingState, state), (.safetensors, state)]
        for (index, (target, bytes)) in seeds.enumerated() {
            let byte = UInt8(FuzzTarget.allCases.firstIndex(of: target)!)
            try Data([byte] + bytes).write(to: URL(fileURLWithPath: "\(directory)/generated-\(index)-\(target.rawValue)"))
        }
        try? FileManager.default.removeItem(atPath: temp)
    } catch {
        print("cannot write the seeds: \(error)")
        exit(1)
    }
    exit(0)
}
