/// Height and width of an image, a kernel, a stride or a padding.
public struct Size2: Hashable, Codable, Sendable, CustomStringConvertible {
    public var height: Int
    public var width: Int
    public init(_ height: Int, _ width: Int) { self.height = height; self.width = width }
    public var description: String { "\(height)x\(width)" }
    public var area: Int { height * width }
}

/// How a 2-D convolution maps its (larger) input grid onto its (smaller) output grid. One geometry
/// serves the three IR ops of a convolution: `conv2d` maps `input` → `output`; `conv2d_t`, its exact
/// adjoint, maps `output` → `input` (so a transposed convolution of the language is a `conv2d_t` whose
/// geometry describes the convolution it is the transpose of); `conv2d_filter` is the weight gradient.
///
/// Output pixel (i, j) reads input pixels (i·stride + a − padBefore, j·stride + b − padBefore) for the
/// kernel offsets (a, b); positions outside the input read zero.
public struct ConvGeometry: Hashable, Codable, Sendable, CustomStringConvertible {
    public var kernel: Size2
    public var stride: Size2
    /// Zero rows above and columns left of the input (`same` may pad one more below and right).
    public var padBefore: Size2
    public var input: Size2
    public var output: Size2

    public init(kernel: Size2, stride: Size2, padBefore: Size2, input: Size2, output: Size2) {
        self.kernel = kernel; self.stride = stride; self.padBefore = padBefore; self.input = input; self.output = output
    }

    public enum Padding: String, Sendable, CaseIterable {
        /// out = ⌈in / stride⌉, zeros split as Keras and TensorFlow do (the odd one after).
        case same
        /// No zeros: out = ⌊(in − kernel) / stride⌋ + 1.
        case valid
    }

    /// Why a geometry cannot be made, in words for a diagnostic.
    public struct Problem: Error, Sendable { public let message: String }

    /// The geometry of a convolution of an `input`-sized image. Refuses strides that do not divide the
    /// image (`same`) or the span the kernel slides over (`valid`): the last rows or columns would be
    /// silently ignored, and no transposed convolution could give the size back.
    public static func convolution(input: Size2, kernel: Size2, stride: Size2, padding: Padding) throws(Problem) -> ConvGeometry {
        var output = Size2(0, 0), pad = Size2(0, 0)
        for axis in [\Size2.height, \Size2.width] {
            let name = axis == \Size2.height ? "height" : "width"
            let n = input[keyPath: axis], k = kernel[keyPath: axis], s = stride[keyPath: axis]
            guard k >= 1, s >= 1 else { throw Problem(message: "kernel and stride must be at least 1") }
            switch padding {
            case .same:
                guard n % s == 0 else {
                    throw Problem(message: "stride \(s) does not divide the input \(name) \(n) (padding: same needs it)")
                }
                let out = n / s
                output[keyPath: axis] = out
                pad[keyPath: axis] = max((out - 1) * s + k - n, 0) / 2
            case .valid:
                guard k <= n else { throw Problem(message: "the kernel \(name) \(k) is larger than the input \(name) \(n)") }
                guard (n - k) % s == 0 else {
                    throw Problem(message: "stride \(s) does not divide the input \(name) \(n) − kernel \(k) = \(n - k) (padding: valid); the last \((n - k) % s) would be ignored")
                }
                output[keyPath: axis] = (n - k) / s + 1
            }
        }
        return ConvGeometry(kernel: kernel, stride: stride, padBefore: pad, input: input, output: output)
    }

    /// The geometry of a transposed convolution taking a `smaller`-sized image back up: the
    /// convolution whose output is `smaller` (`same`: input = smaller·stride; `valid`:
    /// (smaller − 1)·stride + kernel).
    public static func transposed(smaller: Size2, kernel: Size2, stride: Size2, padding: Padding) throws(Problem) -> ConvGeometry {
        let input: Size2 = switch padding {
        case .same: Size2(smaller.height * stride.height, smaller.width * stride.width)
        case .valid: Size2((smaller.height - 1) * stride.height + kernel.height, (smaller.width - 1) * stride.width + kernel.width)
        }
        let g = try convolution(input: input, kernel: kernel, stride: stride, padding: padding)
        guard g.output == smaller else { throw Problem(message: "no convolution maps \(input) back to \(smaller)") }
        return g
    }

    /// Text form in the IR: `k3x3 s2x2 p0x0 28x28>14x14`.
    public var description: String { "k\(kernel) s\(stride) p\(padBefore) \(input)>\(output)" }

    /// Multiply–adds of one example: every output pixel reads the kernel (padding zeros included).
    public func multiplyAdds(inputChannels: Int, outputChannels: Int) -> Int {
        output.area * kernel.area * inputChannels * outputChannels
    }
}
