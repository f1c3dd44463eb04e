/// The learned tensors, each contiguous, in the model's parameter order.
///
/// All of them live in one block (each tensor starting on a 64-byte line), so that a model's few
/// megabytes of parameters, or of one of Adam's moments, take `LargePages`' 2 MiB pages together rather
/// than each tensor below their threshold on ordinary ones.
public final class ParameterStore {
    public let specs: [ParameterSpec]
    public let pointers: [UnsafeMutablePointer<Float>]
    private let block: UnsafeMutablePointer<Float>

    public init(specs: [ParameterSpec]) {
        self.specs = specs
        let starts = specs.reduce(into: [0]) { starts, spec in starts.append(starts.last! + (max(spec.count, 1) + 15) / 16 * 16) }
        let block = LargePages.zeroed(floats: starts.last!)
        self.block = block
        pointers = specs.indices.map { block + starts[$0] }
    }

    deinit { block.deallocate() }

    public var totalCount: Int { specs.reduce(0) { $0 + $1.count } }

    /// torch.nn.Linear's default initialisation (uniform ±1/√fan_in), drawn in parameter order.
    public func initialize(random: inout RandomSource) {
        for (spec, p) in zip(specs, pointers) {
            switch spec.initialization {
            case .uniform(let bound):
                for i in 0..<spec.count { p[i] = (random.nextUniform() * 2 - 1) * bound }
            case .constant(let v):
                for i in 0..<spec.count { p[i] = v }
            }
        }
    }

    public func values(_ index: Int) -> [Float] { Array(UnsafeBufferPointer(start: pointers[index], count: specs[index].count)) }

    public func set(_ index: Int, _ values: [Float]) {
        precondition(values.count == specs[index].count)
        for (i, v) in values.enumerated() { pointers[index][i] = v }
    }

    public func index(of name: String) -> Int? { specs.firstIndex { $0.name == name } }
}
