/// The image functions of the language: `conv2d`, `conv_transpose2d`, `flatten` and `reshape`.
///
/// The language speaks PyTorch's [C, H, W]; the IR stores an image channels-last, [B, H, W, C] (see
/// `Op.conv2d`). Weights keep PyTorch's layouts, and `flatten` and `reshape` move the channel axis so
/// that a flattened image lists its values in PyTorch's order (channel by channel): a model and its
/// exported twin agree on what `linear(flatten(h), 16)` multiplies.
extension Checker {
    /// conv2d(input, channels, kernel:, stride:, padding:, name:): x[B,H,W,Ci] ⊛ W[Co,Ci,kh,kw] + b[Co].
    /// conv_transpose2d(…): the transpose of the convolution that maps its output back to its input
    /// size, with PyTorch's ConvTranspose2d weight layout W[Ci,Co,kh,kw], + b[Co].
    mutating func lowerConvolution(_ call: Call, _ args: BoundArguments, _ namer: inout LayerNamer) throws -> ValueID {
        let function = call.callee.name
        let transposed = function == "conv_transpose2d"
        let inputExpression = args.values["input"]!
        let input = try lower(inputExpression, &namer)
        let shape = builder.shape(input)
        guard shape.batched, shape.dims.count == 3 else {
            throw Diagnostic("\(function) needs an image [channels, height, width], but its input has shape \(ImageLayout.described(shape))",
                             at: inputExpression.range,
                             hint: "declare the input as an image, as in 'input x: [1, 28, 28]', or reshape a vector first: reshape(h, [64, 7, 7])")
        }
        let (image, inChannels) = (Size2(shape.dims[0], shape.dims[1]), shape.dims[2])
        let channels = try wholeNumber(args.values["channels"]!, "the number of channels", range: 1...SizeLimits.maxFeatures)
        let kernel = try size2(args.values["kernel"]!, "the kernel")
        let stride = try args.values["stride"].map { e throws(Diagnostic) in try size2(e, "the stride") } ?? Size2(1, 1)
        let padding = try args.values["padding"].map { e throws(Diagnostic) in try paddingWord(e) } ?? .valid

        let geometry: ConvGeometry
        do {
            geometry = transposed
                ? try ConvGeometry.transposed(smaller: image, kernel: kernel, stride: stride, padding: padding)
                : try ConvGeometry.convolution(input: image, kernel: kernel, stride: stride, padding: padding)
        } catch {
            throw Diagnostic("\(function): \(error.message)", at: call.range, hint: "its input is \(ImageLayout.described(shape))")
        }
        let output = transposed ? geometry.input : geometry.output
        guard SizeLimits.fits([output.height, output.width, channels], within: SizeLimits.maxFeatures) else {
            throw Diagnostic("\(function) would make an image [\(channels), \(output.height), \(output.width)], more than \(SizeLimits.maxFeatures) values per example, more than vaec supports",
                             at: call.range)
        }
        // PyTorch's fan_in is weight.size(1)·kh·kw: the input channels of a convolution, the output
        // channels of a transposed one (its weight is [in, out, kh, kw]).
        let weight = transposed ? [inChannels, channels, kernel.height, kernel.width] : [channels, inChannels, kernel.height, kernel.width]
        let layer = try addLayer(call, args, &namer, weight: weight, bias: channels, fanIn: weight[1] * kernel.area)
        let op: Op = transposed ? .conv2dTransposed(geometry) : .conv2d(geometry)
        // The bias [C] broadcasts along the channel axis (`Shape.broadcast`).
        return builder.binary(.add, builder.binary(op, input, layer.weight), layer.bias)
    }

    /// flatten(x): an image [C, H, W] as a vector of C·H·W in PyTorch's order; a vector unchanged.
    mutating func lowerFlatten(_ args: BoundArguments, _ namer: inout LayerNamer) throws -> ValueID {
        flattened(try lower(args.values["x"]!, &namer))
    }

    /// reshape(x, [dims]): x's values, in PyTorch's order, as a vector [N], a matrix [rows, columns]
    /// or an image [channels, height, width].
    mutating func lowerReshape(_ args: BoundArguments, _ namer: inout LayerNamer) throws -> ValueID {
        let valueExpression = args.values["x"]!, shapeExpression = args.values["shape"]!
        let x = try lower(valueExpression, &namer)
        guard case .list(let items, let range) = shapeExpression else {
            throw Diagnostic("reshape's shape is a list, as in reshape(h, [64, 7, 7])", at: shapeExpression.range)
        }
        guard items.count <= 3 else {
            throw Diagnostic("reshape makes a vector [N], a matrix [rows, columns] or an image [channels, height, width], not a shape of \(items.count) dimensions",
                             at: range)
        }
        var dims: [Int] = []
        for item in items { dims.append(try wholeNumber(item, "a dimension", range: 1...SizeLimits.maxFeatures)) }
        let shape = builder.shape(x)
        guard shape.batched else {
            throw Diagnostic("reshape needs a value per example, not a constant", at: valueExpression.range)
        }
        let count = SizeLimits.product(dims)
        guard count == shape.featureCount else {
            throw Diagnostic("cannot reshape \(ImageLayout.described(shape)) (\(shape.featureCount) values per example) to \(dims) (\(count.map(String.init) ?? "too many") values)",
                             at: range, hint: "reshape keeps every value: the dimensions must multiply to \(shape.featureCount)")
        }
        let stored = dims.count == 3 ? ImageLayout.channelsLast(dims) : dims
        if stored == shape.dims { return x }
        let flat = flattened(x)
        switch dims.count {
        case 1:
            return flat
        case 3 where dims[0] > 1:
            return builder.unary(.channelsLast, builder.unary(.reshape(dims), flat))
        default:
            // One channel: [1, H, W] and [H, W, 1] hold their values in the same order.
            return builder.unary(.reshape(stored), flat)
        }
    }

    /// x's values per example as a vector, in PyTorch's [C, H, W] order for an image.
    mutating func flattened(_ x: ValueID) -> ValueID {
        let shape = builder.shape(x)
        guard shape.dims.count > 1 else { return x }
        let vector = Op.reshape([shape.featureCount])
        if shape.dims.count == 3, shape.dims[2] > 1 {
            return builder.unary(vector, builder.unary(.channelsFirst, x))
        }
        // One channel (or a matrix): the stored order is already the flattened order.
        return builder.unary(vector, x)
    }

    /// A kernel or stride: `3` (both axes) or `[3, 5]` ([height, width]).
    func size2(_ e: Expression, _ what: String) throws(Diagnostic) -> Size2 {
        func axis(_ e: Expression) throws(Diagnostic) -> Int {
            guard let v = e.constantValue, v == v.rounded(), v >= 1, v <= Double(SizeLimits.maxFeatures) else {
                throw Diagnostic("\(what) must be a positive whole number, or two as [height, width]", at: e.range)
            }
            return Int(v)
        }
        guard case .list(let items, let range) = e else {
            let n = try axis(e)
            return Size2(n, n)
        }
        guard items.count == 2 else {
            throw Diagnostic("\(what) is one number or a list of two, [height, width], not of \(items.count)", at: range)
        }
        return Size2(try axis(items[0]), try axis(items[1]))
    }

    /// `padding: same` or `padding: valid`, bare words like the settings' words.
    func paddingWord(_ e: Expression) throws(Diagnostic) -> ConvGeometry.Padding {
        let words = ConvGeometry.Padding.allCases.map(\.rawValue)
        switch e {
        case .name(let id):
            if let padding = ConvGeometry.Padding(rawValue: id.name) { return padding }
            throw Diagnostic("unknown padding '\(id.name)'", at: id.range,
                             hint: closestName(to: id.name, among: words).map { "did you mean '\($0)'?" } ?? "padding is same or valid")
        case .string(let s, let range) where ConvGeometry.Padding(rawValue: s) != nil:
            throw Diagnostic("padding is a word, not a string", at: range, hint: "write padding: \(s)")
        default:
            throw Diagnostic("padding is same or valid", at: e.range)
        }
    }
}
