using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Orchestrator.Training.Tests.Reference;

/// <summary>
/// A tiny GPT-2 in Hugging Face layout, written by the test itself (its own safetensors writer, not the project's): random
/// float64 weights, Conv1D matrices stored [in, out], optional <c>transformer.</c> prefix, <c>attn.bias</c> mask buffers and a
/// tied <c>lm_head.weight</c>, in F32, F16 or BF16. <see cref="Logits"/> is an independent float64 GPT-2 forward over the
/// weights exactly as stored (rounded to the file's dtype), in plain arrays.
/// </summary>
internal sealed class HfGpt2Fixture
{
    public HfGpt2Fixture(int layers, int heads, int width, int vocab, int positions, int seed)
    {
        (Layers, Heads, Width, Vocab, Positions) = (layers, heads, width, vocab, positions);
        var random = new Random(seed);
        double N(double std) => std * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        double[] Vec(int n, double mean, double std) => Enumerable.Range(0, n).Select(_ => mean + N(std)).ToArray();

        Add("wte.weight", [vocab, width], Vec(vocab * width, 0, 0.2));
        Add("wpe.weight", [positions, width], Vec(positions * width, 0, 0.1));
        for (int l = 0; l < layers; l++)
        {
            Add($"h.{l}.ln_1.weight", [width], Vec(width, 1, 0.1));
            Add($"h.{l}.ln_1.bias", [width], Vec(width, 0, 0.1));
            Add($"h.{l}.attn.c_attn.weight", [width, 3 * width], Vec(width * 3 * width, 0, 0.25));
            Add($"h.{l}.attn.c_attn.bias", [3 * width], Vec(3 * width, 0, 0.1));
            Add($"h.{l}.attn.c_proj.weight", [width, width], Vec(width * width, 0, 0.2));
            Add($"h.{l}.attn.c_proj.bias", [width], Vec(width, 0, 0.1));
            Add($"h.{l}.ln_2.weight", [width], Vec(width, 1, 0.1));
            Add($"h.{l}.ln_2.bias", [width], Vec(width, 0, 0.1));
            Add($"h.{l}.mlp.c_fc.weight", [width, 4 * width], Vec(width * 4 * width, 0, 0.2));
            Add($"h.{l}.mlp.c_fc.bias", [4 * width], Vec(4 * width, 0, 0.1));
            Add($"h.{l}.mlp.c_proj.weight", [4 * width, width], Vec(4 * width * width, 0, 0.1));
            Add($"h.{l}.mlp.c_proj.bias", [width], Vec(width, 0, 0.1));
        }

        Add("ln_f.weight", [width], Vec(width, 1, 0.1));
        Add("ln_f.bias", [width], Vec(width, 0, 0.1));
    }

    public int Layers { get; }

    public int Heads { get; }

    public int Width { get; }

    public int Vocab { get; }

    public int Positions { get; }

    /// <summary>Hugging Face names (no prefix) → (shape, values as written: rounded by <see cref="Write"/>).</summary>
    public Dictionary<string, (long[] Shape, double[] Values)> Tensors { get; } = new(StringComparer.Ordinal);

    /// <summary>config.json's <c>scale_attn_weights</c> (written only when false): scores divided by √head_dim.</summary>
    public bool ScaleAttnWeights { get; init; } = true;

    /// <summary>config.json's <c>scale_attn_by_inverse_layer_idx</c> (written when true): block l's scores also divided by l + 1.</summary>
    public bool ScaleAttnByInverseLayerIdx { get; init; }

    /// <summary>config.json's <c>reorder_and_upcast_attn</c> (written when true): the same maths in float32.</summary>
    public bool ReorderAndUpcastAttn { get; init; }

    /// <summary>Leave the three dropout rates out of config.json (transformers then uses 0.1).</summary>
    public bool OmitDropout { get; init; }

    private void Add(string name, long[] shape, double[] values) => Tensors[name] = (shape, values);

    /// <summary>
    /// Writes config.json, model.safetensors and a byte-level vocab.json/merges.txt (256 bytes + end token, no merges) into
    /// <paramref name="directory"/>; rounds <see cref="Tensors"/> to <paramref name="dtype"/> so the reference uses the stored values.
    /// </summary>
    public void Write(string directory, string dtype, bool transformerPrefix, bool maskBuffers, bool lmHead)
    {
        Directory.CreateDirectory(directory);
        foreach (var name in Tensors.Keys.ToList())
        {
            var (shape, values) = Tensors[name];
            Tensors[name] = (shape, values.Select(v => Round(v, dtype)).ToArray());
        }

        var entries = new List<(string Name, string DType, long[] Shape, byte[] Data)>();
        string prefix = transformerPrefix ? "transformer." : "";
        foreach (var (name, (shape, values)) in Tensors)
        {
            entries.Add((prefix + name, dtype, shape, Encode(values, dtype)));
        }

        if (maskBuffers)
        {
            for (int l = 0; l < Layers; l++)
            {
                var mask = new double[Positions * Positions];
                for (int i = 0; i < Positions; i++) for (int j = 0; j <= i; j++) mask[i * Positions + j] = 1;
                entries.Add(($"{prefix}h.{l}.attn.bias", dtype, [1, 1, Positions, Positions], Encode(mask, dtype)));
                entries.Add(($"{prefix}h.{l}.attn.masked_bias", dtype, [], Encode([-1e4], dtype)));
            }
        }

        if (lmHead)
        {
            entries.Add(("lm_head.weight", dtype, Tensors["wte.weight"].Shape, Encode(Tensors["wte.weight"].Values, dtype)));
        }

        WriteSafetensors(Path.Combine(directory, "model.safetensors"), entries);
        File.WriteAllText(Path.Combine(directory, "config.json"), $$"""
            {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
             "n_ctx": {{Positions}}, "n_embd": {{Width}}, "n_head": {{Heads}}, "n_layer": {{Layers}}, "n_positions": {{Positions}},
             "layer_norm_epsilon": 1e-05, {{(OmitDropout ? "" : "\"resid_pdrop\": 0.0, \"embd_pdrop\": 0.0, \"attn_pdrop\": 0.0, ")}}
             {{(ScaleAttnWeights ? "" : "\"scale_attn_weights\": false, ")}}{{(ScaleAttnByInverseLayerIdx ? "\"scale_attn_by_inverse_layer_idx\": true, " : "")}}
             {{(ReorderAndUpcastAttn ? "\"reorder_and_upcast_attn\": true, " : "")}}"vocab_size": {{Vocab}}}
            """);
        WriteByteVocabulary(directory);
    }

    /// <summary>A vocab.json of the 256 byte characters (ids in byte order) + &lt;|endoftext|&gt; (256), and an empty merges.txt.</summary>
    public static void WriteByteVocabulary(string directory)
    {
        var sb = new StringBuilder("{");
        var chars = ByteChars();
        for (int b = 0; b < 256; b++)
        {
            sb.Append(System.Text.Json.JsonSerializer.Serialize(chars[b].ToString())).Append(':').Append(b).Append(',');
        }

        sb.Append("\"<|endoftext|>\":256}");
        File.WriteAllText(Path.Combine(directory, "vocab.json"), sb.ToString());
        File.WriteAllText(Path.Combine(directory, "merges.txt"), "#version: 0.2\n");
    }

    /// <summary>GPT-2's byte → character table, written out independently of the project's.</summary>
    public static char[] ByteChars()
    {
        var printable = new List<int>();
        printable.AddRange(Enumerable.Range('!', '~' - '!' + 1));
        printable.AddRange(Enumerable.Range(0xA1, 0xAC - 0xA1 + 1));
        printable.AddRange(Enumerable.Range(0xAE, 0xFF - 0xAE + 1));
        var table = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            table[b] = printable.Contains(b) ? (char)b : (char)(256 + extra++);
        }

        return table;
    }

    /// <summary>Logits [T, V] of one sequence, in float64.</summary>
    public double[,] Logits(int[] ids)
    {
        int t = ids.Length, c = Width, hd = Width / Heads;
        double[] W(string name) => Tensors[name].Values;
        var x = new double[t, c];
        for (int i = 0; i < t; i++)
            for (int j = 0; j < c; j++)
                x[i, j] = W("wte.weight")[ids[i] * c + j] + W("wpe.weight")[i * c + j];

        for (int l = 0; l < Layers; l++)
        {
            string p = $"h.{l}.";
            var a = LayerNorm(x, W(p + "ln_1.weight"), W(p + "ln_1.bias"));
            var qkv = Conv1D(a, W(p + "attn.c_attn.weight"), W(p + "attn.c_attn.bias"), 3 * c);
            var y = new double[t, c];
            for (int h = 0; h < Heads; h++)
            {
                for (int i = 0; i < t; i++)
                {
                    var scores = new double[i + 1];
                    double max = double.NegativeInfinity;
                    for (int j = 0; j <= i; j++)
                    {
                        double s = 0;
                        for (int d = 0; d < hd; d++) s += qkv[i, h * hd + d] * qkv[j, c + h * hd + d];
                        scores[j] = s * (ScaleAttnWeights ? 1 / Math.Sqrt(hd) : 1) * (ScaleAttnByInverseLayerIdx ? 1.0 / (l + 1) : 1);
                        max = Math.Max(max, scores[j]);
                    }

                    double z = 0;
                    for (int j = 0; j <= i; j++) z += scores[j] = Math.Exp(scores[j] - max);
                    for (int d = 0; d < hd; d++)
                    {
                        double v = 0;
                        for (int j = 0; j <= i; j++) v += scores[j] / z * qkv[j, 2 * c + h * hd + d];
                        y[i, h * hd + d] = v;
                    }
                }
            }

            Add(x, Conv1D(y, W(p + "attn.c_proj.weight"), W(p + "attn.c_proj.bias"), c));
            var m = LayerNorm(x, W(p + "ln_2.weight"), W(p + "ln_2.bias"));
            var f = Conv1D(m, W(p + "mlp.c_fc.weight"), W(p + "mlp.c_fc.bias"), 4 * c);
            for (int i = 0; i < t; i++)
                for (int j = 0; j < 4 * c; j++)
                {
                    double u = f[i, j];
                    f[i, j] = 0.5 * u * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (u + 0.044715 * u * u * u)));
                }

            Add(x, Conv1D(f, W(p + "mlp.c_proj.weight"), W(p + "mlp.c_proj.bias"), c));
        }

        var o = LayerNorm(x, W("ln_f.weight"), W("ln_f.bias"));
        var logits = new double[t, Vocab];
        for (int i = 0; i < t; i++)
            for (int v = 0; v < Vocab; v++)
            {
                double s = 0;
                for (int j = 0; j < c; j++) s += o[i, j] * W("wte.weight")[v * c + j];
                logits[i, v] = s;
            }

        return logits;
    }

    private static void Add(double[,] x, double[,] y)
    {
        for (int i = 0; i < x.GetLength(0); i++)
            for (int j = 0; j < x.GetLength(1); j++)
                x[i, j] += y[i, j];
    }

    /// <summary>y = x·W + b with W stored [in, out] row-major (Hugging Face's Conv1D).</summary>
    private static double[,] Conv1D(double[,] x, double[] w, double[] b, int outWidth)
    {
        int t = x.GetLength(0), inWidth = x.GetLength(1);
        var y = new double[t, outWidth];
        for (int i = 0; i < t; i++)
            for (int o = 0; o < outWidth; o++)
            {
                double s = b[o];
                for (int k = 0; k < inWidth; k++) s += x[i, k] * w[k * outWidth + o];
                y[i, o] = s;
            }

        return y;
    }

    private static double[,] LayerNorm(double[,] x, double[] w, double[] b)
    {
        int t = x.GetLength(0), c = x.GetLength(1);
        var y = new double[t, c];
        for (int i = 0; i < t; i++)
        {
            double mean = 0, variance = 0;
            for (int j = 0; j < c; j++) mean += x[i, j];
            mean /= c;
            for (int j = 0; j < c; j++) variance += (x[i, j] - mean) * (x[i, j] - mean);
            variance /= c;
            for (int j = 0; j < c; j++) y[i, j] = (x[i, j] - mean) / Math.Sqrt(variance + 1e-5) * w[j] + b[j];
        }

        return y;
    }

    internal static double Round(double v, string dtype) => dtype switch
    {
        "F32" => (float)v,
        "F16" => (double)(float)(Half)(float)v,
        "BF16" => BitConverter.UInt32BitsToSingle((uint)Bf16Bits((float)v) << 16),
        _ => throw new ArgumentException(dtype),
    };

    private static ushort Bf16Bits(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        uint rounding = 0x7FFF + ((u >> 16) & 1);
        return (ushort)((u + rounding) >> 16);
    }

    internal static byte[] Encode(double[] values, string dtype)
    {
        int size = dtype == "F32" ? 4 : 2;
        var bytes = new byte[values.Length * size];
        for (int i = 0; i < values.Length; i++)
        {
            var span = bytes.AsSpan(i * size, size);
            switch (dtype)
            {
                case "F32": BinaryPrimitives.WriteSingleLittleEndian(span, (float)values[i]); break;
                case "F16": BinaryPrimitives.WriteHalfLittleEndian(span, (Half)(float)values[i]); break;
                case "BF16": BinaryPrimitives.WriteUInt16LittleEndian(span, Bf16Bits((float)values[i])); break;
            }
        }

        return bytes;
    }

    /// <summary>The safetensors format written by hand: u64 header length, JSON header, raw data.</summary>
    public static void WriteSafetensors(string path, List<(string Name, string DType, long[] Shape, byte[] Data)> entries)
    {
        var header = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach (var (name, dtype, shape, data) in entries)
        {
            header.Append(CultureInfo.InvariantCulture, $",\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{offset},{offset + data.Length}]}}");
            offset += data.Length;
        }

        header.Append('}');
        byte[] json = Encoding.UTF8.GetBytes(header.ToString());
        using var file = File.Create(path);
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Length);
        file.Write(length);
        file.Write(json);
        foreach (var entry in entries) file.Write(entry.Data);
    }
}
