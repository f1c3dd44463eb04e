import Foundation

/// The entry points a fuzzer feeds: every reader of user-supplied bytes, called in-process as the
/// CLI calls it. Each target must only ever throw: a crash, a trap or a hang is a finding. Used by
/// FuzzTests (seeded mutations) and by the libFuzzer harness of scripts/fuzz.sh.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// Model source through the whole front and middle end: lexer, parser, checker, AD, passes.
    case model
    case idx, npy, csv
    /// Any safetensors file.
    case safetensors
    /// A checkpoint: sealed-file checks (format, version, checksum), then names and shapes.
    case checkpoint
    /// The metadata and moments of a training-state file (without its checksum, to reach the parser).
    case trainingState
    /// A `.vaek` file as is (header, checksum, JSON, validation).
    case program
    /// A `.vaek` body re-sealed with a valid checksum, so mutations reach the JSON decoder and the
    /// validation; a program that passes is then trained for one step.
    case programBody

    /// The files of the seed corpus this target starts from, by extension.
    public var extensions: [String] {
        switch self {
        case .model: return ["vae"]
        case .idx: return ["idx", "idx3-ubyte", "ubyte"]
        case .npy: return ["npy"]
        case .csv: return ["csv"]
        case .safetensors, .checkpoint, .trainingState: return ["safetensors"]
        case .program, .programBody: return ["vaek"]
        }
    }

    /// Runs one input; errors are the expected outcome and are swallowed.
    public func run(_ bytes: [UInt8]) {
        let path = "fuzz-input"
        switch self {
        case .model:
            // As `vaec compile --dump …` does: the printers see whatever the front end accepts.
            let source = SourceFile(path: "fuzz.vae", text: String(decoding: bytes, as: UTF8.self))
            if let ast = try? Parser.parse(source) { _ = ASTPrinter.print(ast) }
            guard let result = try? Compiler.compile(source: source) else { return }
            _ = IRPrinter.print(result.program.graph, title: "fuzz")
            _ = WeightingReport.summary(result.model)
            _ = try? result.program.encoded()
        case .idx:
            _ = try? IDXFile.parse(bytes, path: path)
        case .npy:
            _ = try? NPYFile.parse(bytes, path: path)
        case .csv:
            _ = try? CSVMatrix.parse(bytes, path: path)
        case .safetensors:
            _ = try? SafeTensors.parse(bytes, path: path)
        case .checkpoint:
            guard let file = try? SealedSafeTensors.decode(bytes, path: path, format: Checkpoint.format,
                                                            version: Checkpoint.formatVersion, what: "checkpoint") else { return }
            _ = try? Checkpoint.check(file, against: FuzzContext.shared.trainer.parameters.specs, path: path)
        case .trainingState:
            guard let file = try? SafeTensors.parse(bytes, path: path) else { return }
            _ = try? TrainingState.Snapshot(file, path: path, trainer: FuzzContext.shared.trainer)
        case .program:
            _ = try? CompiledProgram.decode(bytes, path: path)
        case .programBody:
            let body = bytes.drop { $0 != UInt8(ascii: "{") }
            let sealed = Array("VAEK \(CompiledProgram.formatVersion)\ncrc32 \(SealedSafeTensors.hex(CRC32.checksum(Array(body)))) length \(body.count)\n".utf8) + body
            guard let program = try? CompiledProgram.decode(sealed, path: path) else { return }
            FuzzContext.trainOneStep(program)
        }
    }
}

/// State shared by the fuzz targets: a trained tiny model whose trainer checkpoint files are checked
/// against, built once.
final class FuzzContext: @unchecked Sendable {
    static let shared = FuzzContext()
    let trainer: Trainer

    static let tinyModel = """
        model tiny
        input  x: [8]
        latent z: [2] ~ normal(0, 1)
        encoder q(z | x) {
          h = tanh(linear(x, 6))
          z ~ normal(mean: linear(h, 2), logvar: linear(h, 2))
        }
        decoder p(x | z) {
          x ~ bernoulli(logits: linear(z, 8))
        }
        train {
          batch: 4
          epochs: 1
          seed: 1
        }
        """

    private init() {
        do {
            let program = try Compiler.compile(source: SourceFile(path: "tiny.vae", text: Self.tinyModel)).program
            trainer = try Trainer(program: program, train: Self.data(count: 16, features: 8), test: nil)
        } catch {
            fatalError("the fuzzers' tiny model does not compile: \(error)")
        }
    }

    static func data(count: Int, features: Int) -> Dataset {
        var rng = RandomSource(seed: 3)
        return Dataset(path: "fuzz-data", count: count, features: features,
                       values: (0..<count * features).map { _ in rng.nextUniform() < 0.5 ? 0 : 1 })
    }

    /// Trains a decoded program for one step on random binary data, when it is small enough to be
    /// quick (the size limits allow programs far bigger than a fuzzer can afford per input).
    static func trainOneStep(_ program: CompiledProgram) {
        let batch = program.model.train.batch
        guard batch <= 64, Trainer.estimatedBytes(program, batch: batch, test: nil) < 64 * 1_048_576,
              program.model.parameters.reduce(0, { $0 + $1.count }) < 1 << 20 else { return }
        guard let trainer = try? Trainer(program: program, train: data(count: batch, features: program.model.input.featureCount), test: nil) else { return }
        _ = try? trainer.runEpoch()
    }
}
