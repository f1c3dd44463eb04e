/// Direct loops for the image ops (convolutions, layout changes, the per-channel sum): the plain
/// interpreter's evaluators, and the reference the fast kernels are tested against. They follow the
/// definitions in `Op` and `ConvGeometry` literally, one multiply–add at a time, so they are slow and
/// easy to trust.
///
/// Layouts: images are [B,H,W,C] (channels-last); weights are [Co,Ci,kh,kw] (PyTorch's).
enum ImageReference {
    /// Calls `body(outputPixel, inputPixel, a, b)` for every output pixel (oy·Wo + ox), kernel offset
    /// (a, b) and the input pixel (iy·W + ix) it reads, skipping reads of the zero padding.
    @inline(__always)
    static func forEachTap(_ g: ConvGeometry, _ body: (Int, Int, Int, Int) -> Void) {
        for oy in 0..<g.output.height {
            for ox in 0..<g.output.width {
                for a in 0..<g.kernel.height {
                    let iy = oy * g.stride.height + a - g.padBefore.height
                    guard iy >= 0, iy < g.input.height else { continue }
                    for b in 0..<g.kernel.width {
                        let ix = ox * g.stride.width + b - g.padBefore.width
                        guard ix >= 0, ix < g.input.width else { continue }
                        body(oy * g.output.width + ox, iy * g.input.width + ix, a, b)
                    }
                }
            }
        }
    }

    /// y[B,Ho,Wo,Co] = x[B,H,W,Ci] ⊛ w[Co,Ci,kh,kw].
    static func conv2d(_ g: ConvGeometry, x: UnsafePointer<Float>, w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                       batch: Int, inChannels ci: Int, outChannels co: Int) {
        let inSize = g.input.area * ci, outSize = g.output.area * co, k = g.kernel
        y.initialize(repeating: 0, count: batch * outSize)
        for n in 0..<batch {
            forEachTap(g) { o, i, a, b in
                for c in 0..<co {
                    var s: Float = 0
                    for d in 0..<ci { s += x[n * inSize + i * ci + d] * w[((c * ci + d) * k.height + a) * k.width + b] }
                    y[n * outSize + o * co + c] += s
                }
            }
        }
    }

    /// dx[B,H,W,Ci] = the adjoint of `conv2d` in x, applied to dy[B,Ho,Wo,Co].
    static func conv2dTransposed(_ g: ConvGeometry, dy: UnsafePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                 batch: Int, inChannels ci: Int, outChannels co: Int) {
        let inSize = g.input.area * ci, outSize = g.output.area * co, k = g.kernel
        dx.initialize(repeating: 0, count: batch * inSize)
        for n in 0..<batch {
            forEachTap(g) { o, i, a, b in
                for d in 0..<ci {
                    var s: Float = 0
                    for c in 0..<co { s += dy[n * outSize + o * co + c] * w[((c * ci + d) * k.height + a) * k.width + b] }
                    dx[n * inSize + i * ci + d] += s
                }
            }
        }
    }

    /// dw[Co,Ci,kh,kw] = Σ over examples and output pixels of dy ⊗ the input patch.
    static func conv2dFilter(_ g: ConvGeometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                             batch: Int, inChannels ci: Int, outChannels co: Int) {
        let inSize = g.input.area * ci, outSize = g.output.area * co, k = g.kernel
        dw.initialize(repeating: 0, count: co * ci * k.area)
        for n in 0..<batch {
            forEachTap(g) { o, i, a, b in
                for c in 0..<co {
                    let up = dy[n * outSize + o * co + c]
                    for d in 0..<ci { dw[((c * ci + d) * k.height + a) * k.width + b] += up * x[n * inSize + i * ci + d] }
                }
            }
        }
    }

    /// [B,H,W,C] → [B,C,H,W] (`toChannelsFirst`) or back, for `count` images.
    static func moveChannels(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                             pixels: Int, channels: Int, toChannelsFirst: Bool) {
        let size = pixels * channels
        for n in 0..<count {
            let src = x + n * size, dst = y + n * size
            for p in 0..<pixels {
                for c in 0..<channels {
                    if toChannelsFirst { dst[c * pixels + p] = src[p * channels + c] } else { dst[p * channels + c] = src[c * pixels + p] }
                }
            }
        }
    }

    /// y[C] = Σ over the rows of x[rows, C].
    static func sumToChannels(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, channels: Int) {
        y.initialize(repeating: 0, count: channels)
        for r in 0..<rows { for c in 0..<channels { y[c] += x[r * channels + c] } }
    }

    /// Evaluates one image op of `graph` (operands and result already in memory).
    static func evaluate(_ node: Node, _ graph: Graph, batch: Int, operand: (Int) -> UnsafePointer<Float>,
                         result y: UnsafeMutablePointer<Float>) {
        let first = graph[node.operands[0]].shape
        let rows = first.batched ? batch : 1
        switch node.op {
        case .conv2d(let g):
            let w = graph[node.operands[1]].shape.dims
            conv2d(g, x: operand(0), w: operand(1), y: y, batch: batch, inChannels: w[1], outChannels: w[0])
        case .conv2dTransposed(let g):
            let w = graph[node.operands[1]].shape.dims
            conv2dTransposed(g, dy: operand(0), w: operand(1), dx: y, batch: batch, inChannels: w[1], outChannels: w[0])
        case .conv2dFilter(let g):
            conv2dFilter(g, dy: operand(0), x: operand(1), dw: y, batch: batch,
                         inChannels: graph[node.operands[1]].shape.dims[2], outChannels: first.dims[2])
        case .reshape:
            y.update(from: operand(0), count: first.elementCount(batch: batch))
        case .channelsFirst, .channelsLast:
            let d = first.dims
            let (pixels, channels) = node.op == .channelsFirst ? (d[0] * d[1], d[2]) : (d[1] * d[2], d[0])
            moveChannels(operand(0), y, count: rows, pixels: pixels, channels: channels, toChannelsFirst: node.op == .channelsFirst)
        case .sumToChannels:
            let channels = first.dims.last!
            sumToChannels(operand(0), y, rows: first.elementCount(batch: batch) / channels, channels: channels)
        default:
            preconditionFailure("\(node.op.mnemonic) is not an image op")
        }
    }
}
