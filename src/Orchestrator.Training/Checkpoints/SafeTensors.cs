using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Orchestrator.Training.Checkpoints;

/// <summary>One tensor's entry in a safetensors header; offsets are relative to the start of the data section.</summary>
public sealed record SafeTensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}

/// <summary>The parsed header of a safetensors file.</summary>
public sealed record SafeTensorsHeader(
    IReadOnlyList<SafeTensorInfo> Tensors,
    IReadOnlyDictionary<string, string> Metadata,
    long DataOffset);

/// <summary>
/// Minimal reader/writer of the safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// <c>{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}</c> (padded with spaces to a
/// multiple of 8), then the raw little-endian row-major data. Supports F32, F64, F16, BF16, I64, I32, I16, I8, U8 and BOOL.
/// </summary>
public static class SafeTensors
{
    private const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new(StringComparer.Ordinal)
    {
        ["F32"] = (ScalarType.Float32, 4),
        ["F64"] = (ScalarType.Float64, 8),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>
    /// Writes <paramref name="tensors"/> (any device; copied to CPU, made contiguous) in the given order with optional
    /// string metadata. Writes to a temporary file first and renames it into place.
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        EnsureLittleEndian();
        var items = tensors.ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var (name, t) in items)
        {
            if (!names.Add(name)) throw new ArgumentException($"Tensor name '{name}' appears twice.", nameof(tensors));
            if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved.", nameof(tensors));
            string dtype = DTypeName(t.dtype);
            long bytes = t.numel() * DTypes[dtype].Size;
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode?)JsonValue.Create(d)).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }

        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padding = (8 - json.Length % 8) % 8;
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = full + ".tmp-" + Environment.ProcessId;
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)(json.Length + padding));
                stream.Write(length);
                stream.Write(json);
                for (int i = 0; i < padding; i++) stream.WriteByte((byte)' ');
                foreach (var (_, t) in items)
                {
                    using var scope = NewDisposeScope();
                    Tensor cpuTensor = t.detach().cpu().contiguous();
                    if (cpuTensor.numel() > 0)
                    {
                        stream.Write(cpuTensor.bytes);
                    }
                }
            }

            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Reads and validates the header.</summary>
    /// <exception cref="FormatException">Not a valid safetensors file.</exception>
    public static SafeTensorsHeader ReadHeader(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return ReadHeader(stream, path);
    }

    /// <summary>Reads every tensor onto <paramref name="device"/> (default CPU), in file order.</summary>
    public static Dictionary<string, Tensor> Load(string path, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        EnsureLittleEndian();
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        SafeTensorsHeader header = ReadHeader(stream, path);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (SafeTensorInfo info in header.Tensors)
            {
                Tensor t = ReadTensor(stream, header, info, path);
                if (device is not null && device.type != TorchSharp.DeviceType.CPU)
                {
                    Tensor moved = t.to(device);
                    t.Dispose();
                    t = moved;
                }

                result.Add(info.Name, t);
            }
        }
        catch
        {
            foreach (Tensor t in result.Values) t.Dispose();
            throw;
        }

        return result;
    }

    /// <summary>
    /// Reads one tensor of an open file (CPU, in its stored dtype), so that a large checkpoint can be converted tensor by
    /// tensor without holding all of it twice.
    /// </summary>
    public static Tensor ReadTensor(Stream stream, SafeTensorsHeader header, SafeTensorInfo info, string path)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(info);
        EnsureLittleEndian();
        var (type, _) = DTypes[info.DType];
        Tensor t = empty(info.Shape, type);
        if (info.ByteLength == 0) return t;
        if (info.ByteLength > int.MaxValue)
        {
            t.Dispose();
            throw new NotSupportedException($"{path}: tensor '{info.Name}' is larger than 2 GiB.");
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)info.ByteLength);
        try
        {
            stream.Position = header.DataOffset + info.Begin;
            stream.ReadExactly(buffer, 0, (int)info.ByteLength);
            t.bytes = buffer.AsSpan(0, (int)info.ByteLength);
        }
        catch
        {
            t.Dispose();
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return t;
    }

    /// <summary>Reads and validates the header of an open file (its position is left after the header).</summary>
    public static SafeTensorsHeader ReadHeader(Stream stream, string path)
    {
        Span<byte> lengthBytes = stackalloc byte[8];
        if (stream.ReadAtLeast(lengthBytes, 8, throwOnEndOfStream: false) != 8)
        {
            throw new FormatException($"{path}: too short for a safetensors file.");
        }

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength == 0 || headerLength > MaxHeaderBytes || (long)headerLength > stream.Length - 8)
        {
            throw new FormatException($"{path}: implausible safetensors header length {headerLength}.");
        }

        byte[] json = new byte[headerLength];
        stream.ReadExactly(json);
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject ?? throw new FormatException($"{path}: the safetensors header is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path}: the safetensors header is not valid JSON ({e.Message}).", e);
        }

        long dataOffset = 8 + (long)headerLength;
        long dataLength = stream.Length - dataOffset;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var tensors = new List<SafeTensorInfo>();
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__")
            {
                if (node is JsonObject meta)
                {
                    foreach (var (k, v) in meta) metadata[k] = v?.GetValue<string>() ?? "";
                }

                continue;
            }

            try
            {
                string dtype = node!["dtype"]!.GetValue<string>();
                if (!DTypes.TryGetValue(dtype, out var dt))
                {
                    throw new NotSupportedException($"{path}: tensor '{name}' has unsupported dtype {dtype}.");
                }

                long[] shape = node["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                JsonArray offsets = node["data_offsets"]!.AsArray();
                long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
                long expected = shape.Aggregate(1L, (a, d) => d < 0 ? throw new FormatException("negative dimension") : a * d) * dt.Size;
                if (offsets.Count != 2 || begin < 0 || end < begin || end > dataLength || end - begin != expected)
                {
                    throw new FormatException(
                        $"{path}: tensor '{name}' has data_offsets [{begin}, {end}] that do not fit its shape [{string.Join(", ", shape)}] {dtype} or the file.");
                }

                tensors.Add(new SafeTensorInfo(name, dtype, shape, begin, end));
            }
            catch (Exception e) when (e is NullReferenceException or InvalidOperationException or ArgumentOutOfRangeException or OverflowException)
            {
                throw new FormatException($"{path}: malformed safetensors entry '{name}' ({e.Message}).", e);
            }
        }

        return new SafeTensorsHeader(tensors.OrderBy(t => t.Begin).ToArray(), metadata, dataOffset);
    }

    private static string DTypeName(ScalarType type)
    {
        foreach (var (name, (t, _)) in DTypes)
        {
            if (t == type) return name;
        }

        throw new NotSupportedException($"safetensors writer: dtype {type} is not supported.");
    }

    private static void EnsureLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("The safetensors code assumes a little-endian machine.");
        }
    }
}
