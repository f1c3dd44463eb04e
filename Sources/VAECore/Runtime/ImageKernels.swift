/// The image kernels of the kernel program (convolutions, layout changes, the per-channel sum), bound
/// to memory: each kernel becomes one or more tasks that together compute its result, run side by side
/// by the worker pool when the stage is split (`pieces` > 1). Every kernel gives the same bits whatever
/// `pieces` is (tested against `ImageReference` and across thread counts in ConvKernelTests).
///
/// Kernels whose result is a batch of images computed by ranges of examples (the convolutions and the
/// layout changes) can run the fused kernel that follows them as an epilogue: called after each chunk
/// of examples, on the thread that computed it, while the chunk is in that core's cache (the bias and
/// the activation after a convolution).
enum ImageKernels {
    typealias Task = ConvKernels.Task
    typealias Epilogue = ConvKernels.Epilogue

    /// Whether `op`'s kernel computes its result by ranges of examples, so it can take an epilogue.
    static func acceptsEpilogue(_ op: Op) -> Bool {
        switch op {
        case .conv2d, .conv2dTransposed, .reshape, .channelsFirst, .channelsLast: return true
        default: return false
        }
    }

    static func bind(_ kernel: StandaloneKernel, _ graph: Graph, batch: Int, pieces: Int,
                     pointer: (ValueID) -> UnsafeMutablePointer<Float>, epilogue: Epilogue? = nil,
                     patchBudget: Int = ConvKernels.patchBudget) -> [Task] {
        precondition(epilogue == nil || acceptsEpilogue(kernel.op), "internal error: an epilogue after \(kernel.op.mnemonic)")
        let operands = kernel.operands.map { UnsafePointer(pointer($0)) }
        let out = pointer(kernel.node)
        let first = graph[kernel.operands[0]].shape
        let pieces = max(1, pieces)
        switch kernel.op {
        case .conv2d(let g):
            let w = graph[kernel.operands[1]].shape.dims
            let s = ConvShape(geometry: g, inChannels: w[1], outChannels: w[0])
            return s.inChannels == 1
                ? ConvSingleChannel.conv2d(s, x: operands[0], w: operands[1], y: out, batch: batch, pieces: pieces, epilogue: epilogue)
                : ConvKernels.conv2d(s, x: operands[0], w: operands[1], y: out, batch: batch, pieces: pieces, epilogue: epilogue, patchBudget: patchBudget)
        case .conv2dTransposed(let g):
            let w = graph[kernel.operands[1]].shape.dims
            let s = ConvShape(geometry: g, inChannels: w[1], outChannels: w[0])
            return s.inChannels == 1
                ? ConvSingleChannel.conv2dTransposed(s, dy: operands[0], w: operands[1], dx: out, batch: batch, pieces: pieces, epilogue: epilogue)
                : ConvKernels.conv2dTransposed(s, dy: operands[0], w: operands[1], dx: out, batch: batch, pieces: pieces, epilogue: epilogue,
                                               patchBudget: patchBudget)
        case .conv2dFilter(let g):
            let s = ConvShape(geometry: g, inChannels: graph[kernel.operands[1]].shape.dims[2], outChannels: first.dims[2])
            return s.inChannels == 1
                ? ConvSingleChannel.conv2dFilter(s, dy: operands[0], x: operands[1], dw: out, batch: batch, pieces: pieces)
                : ConvKernels.conv2dFilter(s, dy: operands[0], x: operands[1], dw: out, batch: batch, pieces: pieces, patchBudget: patchBudget)
        case .reshape, .channelsFirst, .channelsLast:
            let examples = first.batched ? batch : 1, size = first.featureCount
            let d = first.dims
            // (pixels, channels) of the source layout: [P, C] for channels_first, [C, P] for channels_last.
            let layout: (pixels: Int, channels: Int)? = switch kernel.op {
            case .channelsFirst: (d[0] * d[1], d[2])
            case .channelsLast: (d[1] * d[2], d[0])
            default: nil
            }
            let x = operands[0]
            return exampleRanges(examples, pieces).map { range in
                { thread in
                    if let layout {
                        for n in range {
                            transpose(x + n * size, out + n * size, rows: kernel.op == .channelsFirst ? layout.pixels : layout.channels,
                                      columns: kernel.op == .channelsFirst ? layout.channels : layout.pixels)
                        }
                    } else {
                        (out + range.lowerBound * size).update(from: x + range.lowerBound * size, count: range.count * size)
                    }
                    epilogue?(range, thread)
                }
            }
        case .sumToChannels:
            let channels = first.dims.last!
            return ChannelSums.tasks(operands[0], out, rows: first.elementCount(batch: batch) / channels, channels: channels, pieces: pieces)
        default:
            preconditionFailure("\(kernel.op.mnemonic) is not an image op")
        }
    }

    /// Up to `pieces` contiguous, non-empty, balanced ranges covering 0..<count.
    static func exampleRanges(_ count: Int, _ pieces: Int) -> [Range<Int>] {
        let parts = max(1, min(pieces, count))
        guard count > 0 else { return [] }
        return (0..<parts).map { p in count * p / parts..<count * (p + 1) / parts }
    }

    /// y[c, r] = x[r, c] for one [rows, columns] matrix, in 16×16 tiles so both sides are read and
    /// written a cache line at a time.
    static func transpose(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        let tile = 16
        for r0 in stride(from: 0, to: rows, by: tile) {
            let r1 = min(r0 + tile, rows)
            for c0 in stride(from: 0, to: columns, by: tile) {
                let c1 = min(c0 + tile, columns)
                for c in c0..<c1 {
                    let dst = y + c * rows
                    for r in r0..<r1 { dst[r] = x[r * columns + c] }
                }
            }
        }
    }
}
