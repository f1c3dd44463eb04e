import Foundation

/// Examples as rows of floats, already scaled, checked against the model's input.
///
/// Data whose every value is exactly `Float(byte) * scale` for one scale (MNIST's bytes read with
/// `scale: 1/255`, any binarised data) is held as those bytes, a quarter of the memory: gathering a
/// batch then reads a quarter of the bytes (the data set is evicted from the caches by each step's
/// working set, so the batch gather is mostly cache misses) and recomputes each value with the very
/// multiplication that made it, which gives the same bits. Any other data is held as floats.
public struct Dataset: Sendable {
    public let path: String
    public let count: Int
    public let features: Int
    let storage: Storage

    enum Storage: Sendable {
        case floats([Float])
        case bytes(ByteValues)
    }

    public init(path: String, count: Int, features: Int, values: [Float]) {
        self.init(path: path, count: count, features: features, storage: .floats(values))
    }

    init(path: String, count: Int, features: Int, storage: Storage) {
        self.path = path; self.count = count; self.features = features; self.storage = storage
    }

    /// All the values, row-major. Data held as bytes is expanded into a new array on every call:
    /// take rows with `row` or `gather`.
    public var values: [Float] {
        switch storage {
        case .floats(let values):
            return values
        case .bytes(let compact):
            return compact.bytes.map(compact.value)
        }
    }

    /// Whether every value is finite (always so for data read by `load`, which rejects anything else,
    /// and for data held as bytes). One pass over float data: ask once, not per batch.
    public var isFinite: Bool {
        switch storage {
        case .floats(let values): return values.allSatisfy(\.isFinite)
        case .bytes: return true
        }
    }

    /// The data held as bytes: whether `gather` reads bytes rather than floats.
    var isCompact: Bool {
        if case .bytes = storage { return true }
        return false
    }

    /// Reads a data source (path relative to `directory` unless absolute) and checks it against the input.
    public static func load(_ source: DataSource, relativeTo directory: String, input: InputSpec) throws -> Dataset {
        let path = source.path.hasPrefix("/") ? source.path : (directory as NSString).appendingPathComponent(source.path)
        let dims: [Int]
        var raw: [Float]
        switch source.format {
        case .idx: let f = try IDXFile.read(path: path); (dims, raw) = (f.dims, f.values)
        case .npy: let f = try NPYFile.read(path: path); (dims, raw) = (f.dims, f.values)
        case .csv: let f = try CSVMatrix.read(path: path); (dims, raw) = (f.dims, f.values)
        }
        guard dims.count >= 2, dims[0] >= 1 else {
            throw FormatError(path: path, problem: "holds shape \(dims), but a data set needs examples along its first axis")
        }
        let perExample = dims.dropFirst().reduce(1, *)
        guard perExample == input.featureCount else {
            throw FormatError(path: path, problem: "holds examples of shape \(Array(dims.dropFirst())) (\(perExample) values), but input '\(input.name)' is declared \(input.dims) (\(input.featureCount) values)")
        }
        let scale = Float(source.scale)
        // Scaled in place: a scaled copy would double the peak memory of loading a large data set.
        if scale != 1 { raw.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] *= scale } } }
        let values = storedRows(raw, fileDims: Array(dims.dropFirst()), count: dims[0], input: input)
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw FormatError(path: path, problem: "holds a value that is not finite at example \(bad / perExample), feature \(bad % perExample)")
        }
        // Any file may hold bytes (IDX uint8, or whole numbers stored as floats); the check is exact.
        let storage = ByteValues(values, scale: scale).map(Storage.bytes) ?? .floats(values)
        return Dataset(path: path, count: dims[0], features: perExample, storage: storage)
    }

    /// The rows in the layout the input's IR value has (`InputSpec.storedDims`). An image of several
    /// channels is stored channels-last, so rows held [C, H, W] on disk (PyTorch's order) are moved;
    /// rows held [H, W, C] (TensorFlow's) are taken as they are. With one channel, or when the file's
    /// shape says neither (MNIST's [28, 28] for [1, 28, 28]), the two orders are the same or the rows
    /// are read as [C, H, W].
    static func storedRows(_ raw: [Float], fileDims: [Int], count: Int, input: InputSpec) -> [Float] {
        guard input.isImage, input.dims[0] > 1, fileDims != input.storedDims else { return raw }
        let pixels = input.dims[1] * input.dims[2]
        return [Float](unsafeUninitializedCapacity: raw.count) { moved, initialized in
            raw.withUnsafeBufferPointer {
                ImageReference.moveChannels($0.baseAddress!, moved.baseAddress!, count: count, pixels: pixels,
                                            channels: input.dims[0], toChannelsFirst: false)
            }
            initialized = raw.count
        }
    }

    /// The data binarised as the train block asks: thresholded, or drawn as Bernoulli(x) with a
    /// generator seeded by `draw` (so a dynamic epoch's draw depends only on the seed and the epoch).
    /// Binary data is held as bytes (of scale 1, so it reads back as exactly 0 and 1).
    public func binarized(_ binarization: Binarization, draw: UInt64) -> Dataset {
        switch binarization {
        case .none:
            return self
        case .threshold(let t):
            let threshold = Float(t)
            return binary { $0 > threshold }
        case .dynamic:
            var random = RandomSource(seed: draw)
            return binary { random.nextUniform() < $0 }
        }
    }

    /// The data with each value replaced by 1 where `isOne` says so and 0 elsewhere; `isOne` sees the
    /// values in row-major order (a dynamic draw depends on it).
    private func binary(_ isOne: (Float) -> Bool) -> Dataset {
        var bits = [UInt8](repeating: 0, count: count * features)
        bits.withUnsafeMutableBufferPointer { bits in
            switch storage {
            case .floats(let values):
                for (i, value) in values.enumerated() where isOne(value) { bits[i] = 1 }
            case .bytes(let compact):
                for (i, byte) in compact.bytes.enumerated() where isOne(compact.value(byte)) { bits[i] = 1 }
            }
        }
        return Dataset(path: path, count: count, features: features, storage: .bytes(ByteValues(bytes: bits, scale: 1)))
    }

    public var range: (min: Float, max: Float) {
        switch storage {
        case .floats(let values):
            return (values.min() ?? 0, values.max() ?? 0)
        case .bytes(let compact):
            // Every value is one of the present bytes' values (no mix of -0 and +0: see ByteValues).
            let present = compact.presentValues.map(\.value)
            return (present.min() ?? 0, present.max() ?? 0)
        }
    }

    /// How many of the values satisfy `predicate`.
    func valueCount(where predicate: (Float) -> Bool) -> Int {
        switch storage {
        case .floats(let values):
            return values.reduce(0) { predicate($1) ? $0 + 1 : $0 }
        case .bytes(let compact):
            return compact.presentValues.reduce(0) { predicate($1.value) ? $0 + $1.count : $0 }
        }
    }

    /// Copies the rows `indices` into `destination` (row-major).
    public func gather(_ indices: ArraySlice<Int>, into destination: UnsafeMutablePointer<Float>) {
        switch storage {
        case .floats(let values):
            values.withUnsafeBufferPointer { source in
                gatherRows(source, indices, into: destination) { $1.update(from: $0, count: $2) }
            }
        case .bytes(let compact):
            compact.bytes.withUnsafeBufferPointer { source in
                gatherRows(source, indices, into: destination) { compact.expand($0, into: $1, count: $2) }
            }
        }
    }

    /// The rows lie scattered over a data set that each training step's working set evicts, so each
    /// row starts with a TLB miss and a cache miss. Copying the first value of every row before the
    /// rest issues those misses back to back, where they overlap, rather than one per row copy (a
    /// cold mnist batch gathers ~2.5x faster so).
    ///
    /// The arithmetic is not the cost (the copy is vectorised: 6 µs for an mnist batch in cache). In
    /// the step, beside Adam's streams, the batch took 37–42 µs (medians, quiet runs), and stores were
    /// most of it: with every row read from one cached row, so that only the 401 KB of floats were
    /// written, it still took ~38 µs, while only reading the 1,600 source lines took 16–20 µs. (When
    /// the host was busy the writes took 6–9 µs and the reads dominated.) Reading every line of every
    /// row first (45–46 µs) or not touching the first values (44–46) was slower.
    @inline(__always)
    private func gatherRows<Element>(_ source: UnsafeBufferPointer<Element>, _ indices: ArraySlice<Int>,
                                     into destination: UnsafeMutablePointer<Float>,
                                     copy: (UnsafePointer<Element>, UnsafeMutablePointer<Float>, Int) -> Void) {
        guard let base = source.baseAddress else { return }
        for (row, index) in indices.enumerated() { copy(base + index * features, destination + row * features, 1) }
        for (row, index) in indices.enumerated() { copy(base + index * features, destination + row * features, features) }
    }

    /// The values of example `index`.
    public func row(_ index: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: features) { out, initialized in
            gather([index], into: out.baseAddress!)
            initialized = features
        }
    }

    /// Checks the data against the likelihood's support (an error naming the file and the range found)
    /// and returns a note for data that fits but poorly (Bernoulli on grey values).
    public func check(against likelihood: Likelihood) throws -> String? {
        let name = (path as NSString).lastPathComponent
        if likelihood.needsUnitInterval {
            let (lo, hi) = range
            guard lo >= 0, hi <= 1 else {
                throw FormatError(path: path, problem: "holds values from \(lo) to \(hi), outside [0, 1], the support of the \(likelihood.summary) likelihood (is the data scaled? try idx(\"…\", scale: 1/255))")
            }
        }
        guard case .bernoulli = likelihood else { return nil }
        let grey = valueCount { $0 > 0 && $0 < 1 }
        guard grey > 0 else { return nil }
        let share = Double(grey) / Double(count * features) * 100
        return String(format: "note: %.1f%% of the values in %@ lie strictly between 0 and 1, but the Bernoulli likelihood is a density only on binary data (on grey values it does not normalise). Consider 'x ~ continuous_bernoulli(logits: …)', or binarising the data with 'binarize: 0.5' (or 'binarize: dynamic') in the train block.", share, name)
    }
}

/// Values that are all exactly `Float(byte) * scale`, held as the bytes.
///
/// Every value is recomputed by `value`, one IEEE multiplication (which `expand` vectorises: the same
/// operation, so the same bits). With a scale of either sign the products hold zeros of one sign only
/// (0 · scale), so the values compare as the floats they stand for, -0 and +0 included.
struct ByteValues: Sendable {
    let bytes: [UInt8]
    let scale: Float

    init(bytes: [UInt8], scale: Float) {
        self.bytes = bytes; self.scale = scale
    }

    /// The bytes of `values` if each is, bit for bit, `Float(byte) * scale` for some byte; else nil.
    init?(_ values: [Float], scale: Float) {
        guard scale.isFinite, scale != 0 else { return nil }
        let products = (0...255).map { Float(UInt8($0)) * scale }
        var exact = true
        let bytes = [UInt8](unsafeUninitializedCapacity: values.count) { bytes, initialized in
            values.withUnsafeBufferPointer { values in
                for (i, value) in values.enumerated() {
                    // The nearest byte is the only candidate: a product is within a few ulps of
                    // byte · scale, far less than half a step. The bit comparison is what decides.
                    let nearest = (value / scale).rounded()
                    guard nearest >= 0, nearest <= 255,
                          products[Int(nearest)].bitPattern == value.bitPattern else { exact = false; break }
                    bytes[i] = UInt8(nearest)
                }
            }
            initialized = exact ? values.count : 0
        }
        guard exact else { return nil }
        self.init(bytes: bytes, scale: scale)
    }

    @inline(__always) func value(_ byte: UInt8) -> Float { Float(byte) * scale }

    /// Writes the values of `count` bytes from `source` to `destination`.
    @inline(__always)
    func expand(_ source: UnsafePointer<UInt8>, into destination: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { destination[i] = value(source[i]) }
    }

    /// The distinct values present, in byte order, with how often each occurs.
    var presentValues: [(value: Float, count: Int)] {
        var histogram = [Int](repeating: 0, count: 256)
        for byte in bytes { histogram[Int(byte)] += 1 }
        return (0...255).filter { histogram[$0] > 0 }.map { (value: value(UInt8($0)), count: histogram[$0]) }
    }
}

/// The input batch and the noise of a training step, in the buffers the step's program reads.
///
/// `load` fills them for a step: it gathers the rows and draws the noise from the run's generator. The
/// next step's batch can instead be prepared while this step's Adam update runs (`prefetch`, whose
/// tasks run in the update's section, on whichever thread is free): then `load` finds exactly that
/// batch, drawn from exactly the generator state it is given, already in the buffers, and only moves
/// the generator on to where the prefetch's draws left it. A prefetch never advances the run's
/// generator itself, so a checkpoint or an interruption between the two steps sees the state it would
/// without one, and either way the buffers and the generator end with the same bits.
public final class BatchLoader {
    /// The rows batches are gathered from (a new value forgets any prefetch).
    public var data: Dataset { didSet { forgetPrefetch() } }
    public let input: UnsafeMutablePointer<Float>
    public let noise: UnsafeMutablePointer<Float>
    public let batch: Int
    /// Normal draws per batch.
    public let noiseCount: Int

    /// What the armed prefetch prepares: these rows, with the draws that follow `prefetchStart`.
    private var prefetchRows: [Int]
    private var prefetchStart = RandomSource(seed: 0)
    /// Set by the prefetch's tasks when they have run: the generator after the prefetch's draws.
    private var prefetchEnd: RandomSource?
    private var prefetchGathered = false

    /// The two tasks of a prefetch (draw the noise, gather the rows), for `Adam.update(alongside:)`.
    /// The noise is task 0: it is the longer of the two.
    private lazy var prefetchTasks = Adam.SideTasks(count: 2) { [unowned self] task in
        if task == 0 {
            var random = prefetchStart
            random.fillNormal(noise, count: noiseCount)
            prefetchEnd = random
        } else {
            data.gather(prefetchRows[...], into: input)
            prefetchGathered = true
        }
    }

    public init(data: Dataset, batch: Int, noisePerExample: Int) {
        self.data = data
        self.batch = batch
        noiseCount = batch * noisePerExample
        input = Self.allocateLineAligned(batch * data.features)
        noise = Self.allocateLineAligned(noiseCount)
        prefetchRows = []
        prefetchRows.reserveCapacity(batch)
    }

    deinit { UnsafeMutableRawPointer(input).deallocate(); UnsafeMutableRawPointer(noise).deallocate() }

    /// Floats starting on a cache line. malloc aligns to 16 bytes only (an mnist batch, 401 KB, began
    /// 0, 16, 32 or 48 bytes into a line from run to run), and then every 64-byte store of the gather
    /// straddles two lines: gathering 128 rows whose bytes are in cache took 6.6–6.7 µs into a buffer
    /// 16 bytes off, 5.8–6.0 into an aligned one (medians of ~390 gathers, three runs each; release
    /// prototype). In the step the gather costs more, for its memory traffic (see `gatherRows`).
    private static func allocateLineAligned(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
    }

    /// Puts the rows `rows` and the next `noiseCount` normal draws of `random` in the buffers.
    public func load(_ rows: ArraySlice<Int>, random: inout RandomSource) {
        defer { forgetPrefetch() }
        if prefetchGathered, let end = prefetchEnd, prefetchStart == random, prefetchRows.elementsEqual(rows) {
            random = end
            return
        }
        data.gather(rows, into: input)
        random.fillNormal(noise, count: noiseCount)
    }

    /// Arms a prefetch of the batch `rows` with the normal draws that follow `random` (which the caller
    /// keeps as it is) and returns the tasks that prepare it. They overwrite the buffers: call this only
    /// once the current step no longer reads them.
    public func prefetch(_ rows: ArraySlice<Int>, after random: RandomSource) -> Adam.SideTasks {
        forgetPrefetch()
        prefetchRows.append(contentsOf: rows)
        prefetchStart = random
        return prefetchTasks
    }

    private func forgetPrefetch() {
        prefetchRows.removeAll(keepingCapacity: true)
        prefetchEnd = nil
        prefetchGathered = false
    }
}
