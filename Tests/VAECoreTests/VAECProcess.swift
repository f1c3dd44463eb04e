import Foundation
import XCTest

/// Runs the real `vaec` executable, the one `swift test` builds into the same products folder as the
/// test bundle (`.build/debug/vaec` next to `.build/debug/vaecPackageTests.xctest`).
enum VAECProcess {
    struct Result {
        var status: Int32
        /// `.exit` for a normal exit (with `status`), `.uncaughtSignal` for a crash or a kill.
        var reason: Process.TerminationReason
        var stdout: String
        var stderr: String
    }

    /// The binary, or nil (the caller skips) when this test run has none beside it.
    static let binary: URL? = {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var folder = executable.deletingLastPathComponent()
        // On Linux the test runner is the .xctest file itself; on macOS it lives inside a bundle.
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("vaec")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }()

    static func requireBinary() throws -> URL {
        guard let binary else { throw XCTSkip("no vaec executable beside the test bundle; run 'swift build' first") }
        return binary
    }

    /// Runs `vaec arguments…` in `directory` to completion (killed after `timeout` seconds).
    static func run(_ arguments: [String], in directory: URL? = nil, timeout: TimeInterval = 120) throws -> Result {
        let process = try start(arguments, in: directory)
        let watchdog = DispatchWorkItem { if process.process.isRunning { process.process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let result = process.finish()
        watchdog.cancel()
        return result
    }

    /// A running vaec whose output is collected on background threads.
    final class Running: @unchecked Sendable {
        let process = Process()
        private let lock = NSLock()
        private var out = Data(), err = Data()
        private let outDone = DispatchSemaphore(value: 0), errDone = DispatchSemaphore(value: 0)

        fileprivate func collect(_ pipe: Pipe, intoStdout: Bool) {
            let done = intoStdout ? outDone : errDone
            DispatchQueue.global().async {
                while true {
                    let chunk = pipe.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    self.lock.lock()
                    if intoStdout { self.out.append(chunk) } else { self.err.append(chunk) }
                    self.lock.unlock()
                }
                done.signal()
            }
        }

        var stdoutSoFar: String {
            lock.lock(); defer { lock.unlock() }
            return String(decoding: out, as: UTF8.self)
        }

        /// Waits until stdout contains `text` (true) or the process ends or `timeout` passes (false).
        func waitForOutput(containing text: String, timeout: TimeInterval) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if stdoutSoFar.contains(text) { return true }
                if !process.isRunning { return stdoutSoFar.contains(text) }
                usleep(5_000)
            }
            return false
        }

        func finish() -> Result {
            process.waitUntilExit()
            outDone.wait(); errDone.wait()
            lock.lock(); defer { lock.unlock() }
            return Result(status: process.terminationStatus, reason: process.terminationReason,
                          stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
        }
    }

    static func start(_ arguments: [String], in directory: URL? = nil) throws -> Running {
        let running = Running()
        running.process.executableURL = try requireBinary()
        running.process.arguments = arguments
        if let directory { running.process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        running.process.standardOutput = out
        running.process.standardError = err
        running.process.standardInput = FileHandle.nullDevice
        try running.process.run()
        running.collect(out, intoStdout: true)
        running.collect(err, intoStdout: false)
        return running
    }
}
