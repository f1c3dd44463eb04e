import Foundation

/// The parts of an exported module that need only the standard library and numpy, identical for every
/// target: vaec's checkpoint format and the data files of the train block, read as vaec reads them.
enum PythonRuntime {
    /// Reading and writing vaec checkpoints: safetensors with vaec's sealing metadata
    /// (`SealedSafeTensors`: format, format version, CRC-32 of the data buffer) and vaec's layout
    /// (`SafeTensors.encoded`: metadata keys sorted, tensors sorted by name, header padded with spaces to
    /// a multiple of 8), so a file written here is byte for byte the file vaec would write.
    static var checkpoints: String {
        """
        CHECKPOINT_FORMAT = \(Python.string(Checkpoint.format))
        CHECKPOINT_FORMAT_VERSION = \(Checkpoint.formatVersion)


        def read_safetensors(path):
            \"\"\"(tensors, metadata) of a safetensors file, tensors as float32 numpy arrays by name. Needs no
            `safetensors` package. Reads F32, F64, F16 and BF16 (the formats PyTorch and JAX save).\"\"\"
            tensors, metadata, _ = _read_safetensors(path)
            return tensors, metadata


        def _read_safetensors(path):
            with open(path, "rb") as f:
                data = f.read()
            if len(data) < 8:
                raise ValueError(f"{path}: too short for a safetensors file ({len(data)} bytes)")
            (n,) = struct.unpack("<Q", data[:8])
            if n > len(data) - 8:
                raise ValueError(f"{path}: truncated: the header length says {n} bytes but {len(data) - 8} follow")
            header = json.loads(data[8:8 + n].decode("utf-8"))
            metadata = header.pop("__metadata__", None) or {}
            buffer = memoryview(data)[8 + n:]
            tensors = {}
            for name, info in header.items():
                begin, end = info["data_offsets"]
                shape = tuple(info["shape"])
                raw = buffer[begin:end]
                dtype = info["dtype"]
                if dtype == "BF16":
                    values = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
                elif dtype in ("F32", "F64", "F16"):
                    values = np.frombuffer(raw, dtype={"F32": "<f4", "F64": "<f8", "F16": "<f2"}[dtype]).astype(np.float32)
                else:
                    raise ValueError(f"{path}: tensor {name!r} has dtype {dtype}; parameters are floating point")
                tensors[name] = values.reshape(shape)
            return tensors, metadata, data[8 + n:]


        def _json_string(s):
            return json.dumps(s, ensure_ascii=False)


        def write_safetensors(path, tensors, metadata):
            \"\"\"Writes float32 tensors as vaec lays a file out, atomically (a temporary file, then a rename).\"\"\"
            names = sorted(tensors)
            entries, offset, blobs = [], 0, []
            if metadata:
                entries.append(_json_string("__metadata__") + ":{" + ",".join(
                    _json_string(k) + ":" + _json_string(metadata[k]) for k in sorted(metadata)) + "}")
            for name in names:
                values = np.array(tensors[name], dtype="<f4", order="C")   # keeps a 0-d array 0-d
                if not np.all(np.isfinite(values)):
                    raise ValueError(f"{path}: tensor {name!r} holds NaN or Inf; vaec checkpoints hold finite values")
                blob = values.tobytes()
                shape = ",".join(str(int(d)) for d in values.shape)
                entries.append(f'{_json_string(name)}:{{"dtype":"F32","shape":[{shape}],"data_offsets":[{offset},{offset + len(blob)}]}}')
                offset += len(blob)
                blobs.append(blob)
            header = ("{" + ",".join(entries) + "}").encode("utf-8")
            header += b" " * (-len(header) % 8)
            temporary = f"{path}.tmp-{os.getpid()}"
            with open(temporary, "wb") as f:
                f.write(struct.pack("<Q", len(header)))
                f.write(header)
                for blob in blobs:
                    f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)


        def check_parameters(tensors, path):
            \"\"\"Every parameter of the model with its shape, and nothing else; a ValueError naming all problems.\"\"\"
            problems = []
            for name, (shape, _) in PARAMETERS.items():
                if name not in tensors:
                    problems.append(f"has no tensor {name!r}, which the model needs")
                elif tuple(tensors[name].shape) != tuple(shape):
                    problems.append(f"holds {name!r} with shape {list(tensors[name].shape)}, but the model's is {list(shape)}")
            problems += [f"holds a tensor {name!r} that the model does not have" for name in sorted(tensors) if name not in PARAMETERS]
            if problems:
                raise ValueError(f"{path}: " + "; ".join(problems) + f" (is it a checkpoint of another model than {MODEL_NAME!r}?)")


        def read_vaec_checkpoint(path):
            \"\"\"(parameters as float32 numpy arrays, metadata) of a vaec checkpoint. A sealed file (one vaec wrote,
            or save_vaec_checkpoint) is checked as vaec checks it: format, version and the CRC-32 of its data;
            a plain safetensors file (torch's or safetensors' save_file) is taken as it is.\"\"\"
            tensors, metadata, buffer = _read_safetensors(path)
            if \(Python.string(SealedSafeTensors.formatKey)) in metadata:
                if metadata[\(Python.string(SealedSafeTensors.formatKey))] != CHECKPOINT_FORMAT:
                    raise ValueError(f"{path}: is a {metadata['format']!r} file, not a vaec checkpoint")
                if metadata.get(\(Python.string(SealedSafeTensors.versionKey))) != str(CHECKPOINT_FORMAT_VERSION):
                    raise ValueError(f"{path}: has checkpoint format {metadata.get('format_version')}; this module reads {CHECKPOINT_FORMAT_VERSION}")
                crc = "%08x" % (zlib.crc32(buffer) & 0xFFFFFFFF)
                if metadata.get(\(Python.string(SealedSafeTensors.checksumKey))) != crc:
                    raise ValueError(f"{path}: is damaged: the CRC-32 of its data is {crc}, but its metadata says {metadata.get('crc32')}")
            check_parameters(tensors, path)
            return tensors, metadata


        def save_vaec_checkpoint(path, params, step=0, epoch=0):
            \"\"\"Writes parameters (a model or a dict of arrays by vaec's names) as a vaec checkpoint: `vaec eval`,
            `vaec report` and `vaec grad --checkpoint` read it directly.\"\"\"
            tensors = {name: np.asarray(value, dtype=np.float32) for name, value in _numpy_parameters(params).items()}
            check_parameters(tensors, path)
            metadata = {"vaec_version": VAEC_VERSION, "model": MODEL_NAME, "model_hash": MODEL_HASH,
                        "epoch": str(int(epoch)), "step": str(int(step)),
                        \(Python.string(SealedSafeTensors.formatKey)): CHECKPOINT_FORMAT, \(Python.string(SealedSafeTensors.versionKey)): str(CHECKPOINT_FORMAT_VERSION)}
            # The CRC covers the data buffer only, which does not depend on the metadata.
            data = b"".join(np.array(tensors[n], dtype="<f4", order="C").tobytes() for n in sorted(tensors))
            metadata[\(Python.string(SealedSafeTensors.checksumKey))] = "%08x" % (zlib.crc32(data) & 0xFFFFFFFF)
            write_safetensors(path, tensors, metadata)
        """
    }

    /// The train block's data files, read and scaled as `Dataset.load` does (values converted to float32,
    /// then multiplied by the float32 scale), as [examples, *INPUT_SHAPE]: an image [N, C, H, W].
    static func data(_ input: InputSpec) -> String {
        // vaec holds an image of several channels channels-last and reads a file [N, H, W, C] as such
        // (`Dataset.storedRows`); any other file is in PyTorch's order.
        var layout = "values = values.reshape((len(raw),) + INPUT_SHAPE)"
        if input.isImage && input.dims[0] > 1 {
            let (c, h, w) = (input.dims[0], input.dims[1], input.dims[2])
            layout = """
            if tuple(np.shape(raw)[1:]) == (\(h), \(w), \(c)):   # TensorFlow's [N, H, W, C]
                values = np.ascontiguousarray(values.reshape(len(raw), \(h), \(w), \(c)).transpose(0, 3, 1, 2))
            \(layout)
            """
        }
        return """
        def read_idx(path):
            \"\"\"An IDX file (MNIST's format) as a numpy array.\"\"\"
            with open(path, "rb") as f:
                data = f.read()
            if len(data) < 4 or data[0] != 0 or data[1] != 0:
                raise ValueError(f"{path}: not an IDX file (bad magic number)")
            types = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
            if data[2] not in types:
                raise ValueError(f"{path}: unknown IDX type code {data[2]:#04x}")
            rank = data[3]
            dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
            return np.frombuffer(data, dtype=types[data[2]], offset=4 + 4 * rank).reshape(dims)


        def read_csv(path):
            \"\"\"A CSV matrix of numbers; a first row that is not all numbers is a header.\"\"\"
            rows = []
            with open(path, newline="", encoding="utf-8-sig") as f:
                for row in csv.reader(f):
                    fields = [field.strip() for field in row]
                    if not any(fields):
                        continue
                    try:
                        rows.append([float(field) for field in fields])
                    except ValueError:
                        if rows:
                            raise
            return np.array(rows, dtype=np.float64)


        def load_data(which="data", path=None):
            \"\"\"The train block's `data:` or `test:` set as float32 [examples, *INPUT_SHAPE], scaled as vaec scales
            it. Paths are relative to the model file's folder (MODEL_DIR), or give `path`.\"\"\"
            source = TRAIN[which]
            if source is None:
                raise ValueError(f"the model file's train block has no {which}: set")
            file, kind, scale = source
            file = path or (file if os.path.isabs(file) else os.path.join(MODEL_DIR, file))
            raw = {"idx": read_idx, "npy": np.load, "csv": read_csv}[kind](file)
            values = np.asarray(raw).reshape(len(raw), -1).astype(np.float32)
            if values.shape[1] != FEATURES:
                raise ValueError(f"{file}: holds {values.shape[1]} values per example, but the input has {FEATURES}")
            \(layout.replacingOccurrences(of: "\n", with: "\n    "))
            return values if scale == 1 else values * np.float32(scale)
        """
    }

    /// vaec's random stream (`RandomSource`) and what vaec draws from it, so that the exported training
    /// starts from vaec's very parameters and sees vaec's shuffles and ε: the same run up to float32 rounding.
    static func randomStream(_ input: InputSpec) -> String {
        // vaec draws a dynamic binarisation's uniforms in its own layout, channels-last for an image of
        // several channels.
        var draws = "VaecRandom(draw).uniform(values.size).reshape(values.shape)"
        if input.isImage && input.dims[0] > 1 {
            draws = "VaecRandom(draw).uniform(values.size).reshape(len(values), \(input.dims[1]), \(input.dims[2]), \(input.dims[0])).transpose(0, 3, 1, 2)"
        }
        return """
        class VaecRandom:
            \"\"\"vaec's random stream (Training/RandomSource.swift): xoshiro256** seeded through SplitMix64, with
            vaec's uniform (24 bits), index (Lemire's multiply-shift), permutation (Fisher–Yates) and normal
            (Box–Muller in double, rounded to float32) draws. A seed gives the numbers vaec draws.\"\"\"
            MASK = (1 << 64) - 1

            def __init__(self, seed):
                s, state = int(seed) & self.MASK, []
                for _ in range(4):
                    s = (s + 0x9E3779B97F4A7C15) & self.MASK
                    z = ((s ^ (s >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
                    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
                    state.append(z ^ (z >> 31))
                self.state = state

            def next(self):
                s0, s1, s2, s3 = self.state
                m = self.MASK
                r = (s1 * 5) & m
                result = ((((r << 7) | (r >> 57)) & m) * 9) & m
                t = (s1 << 17) & m
                s2 ^= s0
                s3 ^= s1
                s1 ^= s2
                s0 ^= s3
                s2 ^= t
                s3 = ((s3 << 45) | (s3 >> 19)) & m
                self.state = [s0, s1, s2, s3]
                return result

            def uniform(self, count):
                \"\"\"float32 in [0, 1) with 24 bits.\"\"\"
                return np.array([self.next() >> 40 for _ in range(count)], dtype=np.float32) * np.float32(1 / 16777216)

            def index(self, n):
                return (((self.next() >> 32) & 0xFFFFFFFF) * n) >> 32

            def permutation(self, n):
                order = list(range(n))
                for i in range(n - 1, 0, -1):
                    j = self.index(i + 1)
                    order[i], order[j] = order[j], order[i]
                return np.array(order)

            def normal(self, count):
                \"\"\"Standard normal float32 draws, two per pair of uniforms (the last pair's second dropped for an odd count).\"\"\"
                values = []
                while len(values) < count:
                    u1 = ((self.next() >> 11) + 1) * (1.0 / 9007199254740993.0)
                    u2 = (self.next() >> 11) * (1.0 / 9007199254740992.0)
                    r = math.sqrt(-2 * math.log(u1))
                    values += [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)]
                return np.array(values[:count], dtype=np.float32)


        def binarized(values, seed, epoch):
            \"\"\"The data as the train block's `binarize:` turns it into 0/1, as vaec's Trainer does: x > t for a
            threshold; for `dynamic` a Bernoulli(x) draw per epoch (epoch 0, 1, …; −1 for the test set, drawn once)
            from vaec's stream with the seed vaec derives from the training seed and the epoch.\"\"\"
            setting = TRAIN["binarize"]
            if setting is None:
                return values
            if setting != "dynamic":
                return (values > np.float32(setting)).astype(np.float32)
            mask = VaecRandom.MASK
            draw = ((int(seed) * 0x9E3779B97F4A7C15) & mask) ^ (int(epoch) & mask) ^ 0xB1A7
            return (\(draws) < values).astype(np.float32)


        def vaec_initial_parameters(random):
            \"\"\"The parameters vaec's run starts from, drawn from a VaecRandom as ParameterStore.initialize does:
            each tensor in order, U(−b, b) as (u·2 − 1)·b in float32, constants as they are.\"\"\"
            params = {}
            for name, (shape, (kind, value)) in PARAMETERS.items():
                count = int(np.prod(shape, dtype=np.int64))
                if kind == "uniform":
                    values = (random.uniform(count) * np.float32(2) - np.float32(1)) * np.float32(value)
                else:
                    values = np.full(count, value, dtype=np.float32)
                params[name] = values.reshape(shape)
            return params
        """
    }
}
