/// The shape of an IR value. The batch axis is implicit in the language and symbolic in the IR:
/// a `batched` value has one copy of `dims` per example, laid out example-major ([B, dims...]).
public struct Shape: Hashable, Codable, Sendable, CustomStringConvertible {
    public var batched: Bool
    public var dims: [Int]

    public init(batched: Bool, _ dims: [Int]) { self.batched = batched; self.dims = dims }

    public static let scalar = Shape(batched: false, [])
    public static let perExample = Shape(batched: true, [])
    public static func example(_ dims: Int...) -> Shape { Shape(batched: true, dims) }
    public static func fixed(_ dims: Int...) -> Shape { Shape(batched: false, dims) }

    /// Elements per example (batched) or in all (unbatched).
    public var featureCount: Int { dims.reduce(1, *) }
    public func elementCount(batch: Int) -> Int { featureCount * (batched ? batch : 1) }
    public var isScalar: Bool { !batched && dims.isEmpty }

    public var description: String {
        let inner = dims.map(String.init).joined(separator: ",")
        return batched ? "[B\(dims.isEmpty ? "" : ",")\(inner)]" : "[\(inner)]"
    }

    /// The shape two operands of an elementwise op broadcast to, or nil if they do not.
    /// Rules: the batch axis broadcasts; among feature shapes, equal shapes match and `[]` matches any;
    /// and an unbatched vector [C] matches a shape whose last axis is C (a per-channel bias of an image).
    public static func broadcast(_ a: Shape, _ b: Shape) -> Shape? {
        let batched = a.batched || b.batched
        if a.dims == b.dims { return Shape(batched: batched, a.dims) }
        if a.dims.isEmpty { return Shape(batched: batched, b.dims) }
        if b.dims.isEmpty { return Shape(batched: batched, a.dims) }
        if b.isChannelVector(of: a) { return Shape(batched: batched, a.dims) }
        if a.isChannelVector(of: b) { return Shape(batched: batched, b.dims) }
        return nil
    }

    /// Whether this is an unbatched [C] that repeats along the last axis of `other` (rank ≥ 2).
    public func isChannelVector(of other: Shape) -> Bool {
        !batched && dims.count == 1 && other.dims.count >= 2 && other.dims.last == dims[0]
    }
}
