/// The learned tensors, each in its own contiguous buffer, in the model's parameter order.
public final class ParameterStore {
    public let specs: [ParameterSpec]
    public private(set) var pointers: [UnsafeMutablePointer<Float>]

    public init(specs: [ParameterSpec]) {
        self.specs = specs
        pointers = specs.map { spec in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(spec.count, 1))
            p.initialize(repeating: 0, count: max(spec.count, 1))
            return p
        }
    }

    deinit { for p in pointers { p.deallocate() } }

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
