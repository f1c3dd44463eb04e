/// A layer of the exported model: its parameter prefix, what it computes, and the statement it belongs
/// to. Convolutions carry the geometry vaec compiled (from the checked graph, not re-derived), so the
/// exported padding and cropping are vaec's to the row.
struct LayerPlan {
    enum Kind {
        /// x·Wᵀ + b, W [out, in].
        case linear
        /// conv2d: W [out, in, kh, kw] (PyTorch's Conv2d), `geometry` mapping the input to the output.
        case convolution(ConvGeometry)
        /// conv_transpose2d: W [in, out, kh, kw] (PyTorch's ConvTranspose2d), the exact adjoint of the
        /// convolution `geometry` describes (its `output` is this layer's input, its `input` this layer's output).
        case transposedConvolution(ConvGeometry)
    }

    var name: String
    var kind: Kind
    /// Features (linear) or channels (convolutions) in and out.
    var inputs: Int
    var outputs: Int
    /// The statement as written, for the comment on the layer's construction.
    var source: String

    var geometry: ConvGeometry? {
        switch kind {
        case .linear: return nil
        case .convolution(let g), .transposedConvolution(let g): return g
        }
    }

    /// A comment for the statement that uses the layer when its padding is TensorFlow's uneven split,
    /// which PyTorch's layers cannot take (even padding is the layer's `padding=`, `valid` has none).
    var paddingNote: String? {
        guard let g = geometry, !g.isSymmetric else { return nil }
        let padding = "TensorFlow's same padding (top \(g.padBefore.height), bottom \(g.padAfter.height), left \(g.padBefore.width), right \(g.padAfter.width))"
        switch kind {
        case .linear: return nil
        case .convolution:
            return "\(name): \(g.input) → \(g.output) at stride \(g.stride.compact), \(padding)"
        case .transposedConvolution:
            return "\(name): \(g.output) → \(g.input) at stride \(g.stride.compact), the adjoint of a conv2d \(g.input) → \(g.output) with \(padding): its full \(g.fullTransposedOutput) output cropped by that"
        }
    }
}

extension ConvGeometry {
    /// Zero rows below and columns right of the input: (out − 1)·stride + kernel − in − before (`same`
    /// puts the odd one here, as TensorFlow does; `valid` has none).
    var padAfter: Size2 {
        Size2((output.height - 1) * stride.height + kernel.height - input.height - padBefore.height,
              (output.width - 1) * stride.width + kernel.width - input.width - padBefore.width)
    }

    /// Equal zeros before and after on both axes: what the `padding=` of PyTorch's layers expresses.
    var isSymmetric: Bool { padBefore == padAfter }

    /// The size a transposed convolution without padding makes from `output`: (out − 1)·stride + kernel.
    var fullTransposedOutput: Size2 {
        Size2((output.height - 1) * stride.height + kernel.height, (output.width - 1) * stride.width + kernel.width)
    }
}

extension Size2 {
    /// `3` for 3×3, `(3, 2)` otherwise: how PyTorch's layers take a kernel or stride.
    var compact: String { height == width ? "\(height)" : "(\(height), \(width))" }
    /// `(3, 2)`: a Python pair.
    var pair: String { "(\(height), \(width))" }
}
