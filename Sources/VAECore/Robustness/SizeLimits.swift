/// Sizes vaec refuses before it allocates anything, so a typo such as `input x: [16777216, 16777216]` or
/// `linear(h, 16777216)` is an error message, not an attempt to allocate petabytes or an overflowing
/// shape product.
public enum SizeLimits {
    /// Values per example of the declared input or latent (2^24).
    public static let maxFeatures = 1 << 24
    /// Values of one parameter tensor and of all parameters together (2^28 floats = 1 GiB; Adam keeps
    /// two more copies).
    public static let maxParameters = 1 << 28

    /// The product of dimensions, nil when it overflows or a dimension is negative.
    public static func product(_ dims: [Int]) -> Int? { FormatMath.product(dims) }

    /// Whether `dims` hold at most `limit` values (false on overflow).
    public static func fits(_ dims: [Int], within limit: Int) -> Bool { product(dims).map { $0 <= limit } ?? false }
}
