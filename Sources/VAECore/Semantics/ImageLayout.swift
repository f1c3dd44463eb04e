/// The two orders of an image's axes: the language's [C, H, W] and the IR's channels-last [H, W, C].
/// In the IR every rank-3 value is an image: the input declared [C, H, W], a convolution's output, or
/// a reshape to [C, H, W] (the checker makes no other), so the IR shape alone says how to show it.
public enum ImageLayout {
    public static func channelsLast(_ chw: [Int]) -> [Int] { [chw[1], chw[2], chw[0]] }
    public static func channelsFirst(_ hwc: [Int]) -> [Int] { [hwc[2], hwc[0], hwc[1]] }

    /// How the user sees an IR shape: a (batched) rank-3 value is an image, shown as [B,C,H,W].
    public static func described(_ shape: Shape) -> String {
        guard shape.dims.count == 3 else { return shape.description }
        return Shape(batched: shape.batched, channelsFirst(shape.dims)).description
    }
}
