using System.Globalization;
using System.Text;

namespace Orchestrator.Training.Tests.Reference;

/// <summary>The shape and options of a tiny Llama-family checkpoint written by <see cref="HfLlamaFixture"/>.</summary>
internal sealed record HfLlamaShape(
    string ModelType = "llama",
    int Layers = 2,
    int Heads = 4,
    int KeyValueHeads = 2,
    int Width = 32,
    int Inner = 48,
    int Vocab = 97,
    int Positions = 64,
    double Theta = 10000,
    double Eps = 1e-5,
    bool QkvBias = false,
    bool Tied = false,
    string? RopeScalingJson = null,
    int? HeadDim = null);

/// <summary>
/// A tiny Llama / Qwen2 checkpoint in the transformers layout, written by the test itself (its own safetensors writer,
/// <c>model.</c>-prefixed names, optional shards with an index, optional old rotary buffers), with random float64 weights
/// rounded to the file's dtype. <see cref="Logits"/> is an independent float64 forward over exactly those weights in plain
/// arrays: RMSNorm, rotary positions pairing dimension i with i + HeadDim/2, grouped-query attention, SwiGLU.
/// </summary>
internal sealed class HfLlamaFixture
{
    public HfLlamaFixture(HfLlamaShape shape, int seed)
    {
        Shape = shape;
        var random = new Random(seed);
        double N(double std) => std * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        double[] Vec(int n, double mean, double std) => Enumerable.Range(0, n).Select(_ => mean + N(std)).ToArray();
        int d = shape.Width, hd = HeadDim, q = shape.Heads * hd, kv = shape.KeyValueHeads * hd, f = shape.Inner;

        // A tied head scores each token by its own embedding, so large embeddings would make every step repeat its input.
        Add("model.embed_tokens.weight", [shape.Vocab, d], Vec(shape.Vocab * d, 0, shape.Tied ? 0.3 : 1.0));
        for (int l = 0; l < shape.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            Add(p + "input_layernorm.weight", [d], Vec(d, 1, 0.1));
            Add(p + "self_attn.q_proj.weight", [q, d], Vec(q * d, 0, 0.6 / Math.Sqrt(d)));
            Add(p + "self_attn.k_proj.weight", [kv, d], Vec(kv * d, 0, 0.6 / Math.Sqrt(d)));
            Add(p + "self_attn.v_proj.weight", [kv, d], Vec(kv * d, 0, 1.0 / Math.Sqrt(d)));
            if (shape.QkvBias)
            {
                Add(p + "self_attn.q_proj.bias", [q], Vec(q, 0, 0.3));
                Add(p + "self_attn.k_proj.bias", [kv], Vec(kv, 0, 0.3));
                Add(p + "self_attn.v_proj.bias", [kv], Vec(kv, 0, 0.3));
            }

            Add(p + "self_attn.o_proj.weight", [d, q], Vec(d * q, 0, 0.5 / Math.Sqrt(q)));
            Add(p + "post_attention_layernorm.weight", [d], Vec(d, 1, 0.1));
            Add(p + "mlp.gate_proj.weight", [f, d], Vec(f * d, 0, 1.0 / Math.Sqrt(d)));
            Add(p + "mlp.up_proj.weight", [f, d], Vec(f * d, 0, 1.0 / Math.Sqrt(d)));
            Add(p + "mlp.down_proj.weight", [d, f], Vec(d * f, 0, 0.5 / Math.Sqrt(f)));
        }

        Add("model.norm.weight", [d], Vec(d, 1, 0.1));
        if (!shape.Tied) Add("lm_head.weight", [shape.Vocab, d], Vec(shape.Vocab * d, 0, 1.0 / Math.Sqrt(d)));
    }

    public HfLlamaShape Shape { get; }

    public int HeadDim => Shape.HeadDim ?? Shape.Width / Shape.Heads;

    /// <summary>Transformers names → (shape, values as written: rounded by <see cref="Write"/>).</summary>
    public Dictionary<string, (long[] Shape, double[] Values)> Tensors { get; } = new(StringComparer.Ordinal);

    private void Add(string name, long[] shape, double[] values) => Tensors[name] = (shape, values);

    /// <summary>
    /// Writes config.json (+ <paramref name="extraConfig"/> fields, raw JSON), and the weights as model.safetensors or as
    /// <paramref name="shards"/> files with model.safetensors.index.json; rounds the weights to <paramref name="dtype"/>.
    /// </summary>
    public void Write(string directory, string dtype, int shards = 1, bool rotaryBuffers = false, string extraConfig = "",
        bool tiedHeadCopy = false)
    {
        Directory.CreateDirectory(directory);
        foreach (var name in Tensors.Keys.ToList())
        {
            var (shape, values) = Tensors[name];
            Tensors[name] = (shape, values.Select(v => HfGpt2Fixture.Round(v, dtype)).ToArray());
        }

        var entries = Tensors.Select(t => (Name: t.Key, DType: dtype, t.Value.Shape, Data: HfGpt2Fixture.Encode(t.Value.Values, dtype))).ToList();
        if (rotaryBuffers)
        {
            for (int l = 0; l < Shape.Layers; l++)
            {
                entries.Add(($"model.layers.{l}.self_attn.rotary_emb.inv_freq", "F32", [HeadDim / 2], HfGpt2Fixture.Encode(new double[HeadDim / 2], "F32")));
            }
        }

        if (tiedHeadCopy)
        {
            var embed = Tensors["model.embed_tokens.weight"];
            entries.Add(("lm_head.weight", dtype, embed.Shape, HfGpt2Fixture.Encode(embed.Values, dtype)));
        }

        if (shards <= 1)
        {
            HfGpt2Fixture.WriteSafetensors(Path.Combine(directory, "model.safetensors"), entries);
        }
        else
        {
            var map = new StringBuilder("{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
            int per = (entries.Count + shards - 1) / shards;
            for (int s = 0; s < shards; s++)
            {
                string file = $"model-{s + 1:00000}-of-{shards:00000}.safetensors";
                var part = entries.Skip(s * per).Take(per).ToList();
                HfGpt2Fixture.WriteSafetensors(Path.Combine(directory, file), part);
                foreach (var e in part) map.Append(CultureInfo.InvariantCulture, $"\"{e.Name}\": \"{file}\",");
            }

            map.Length--;
            map.Append("}}");
            File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"), map.ToString());
        }

        string architecture = Shape.ModelType == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
        string scaling = Shape.RopeScalingJson ?? "null";
        string headDim = Shape.HeadDim is { } h ? $"\"head_dim\": {h}," : "";
        string bias = Shape.ModelType == "llama" ? $"\"attention_bias\": {(Shape.QkvBias ? "true" : "false")}, \"mlp_bias\": false," : "";
        File.WriteAllText(Path.Combine(directory, "config.json"), string.Create(CultureInfo.InvariantCulture, $$"""
            {"architectures": ["{{architecture}}"], "model_type": "{{Shape.ModelType}}", "hidden_act": "silu",
             "hidden_size": {{Shape.Width}}, "intermediate_size": {{Shape.Inner}}, "num_hidden_layers": {{Shape.Layers}},
             "num_attention_heads": {{Shape.Heads}}, "num_key_value_heads": {{Shape.KeyValueHeads}}, {{headDim}}
             "max_position_embeddings": {{Shape.Positions}}, "rms_norm_eps": {{Shape.Eps:R}}, "rope_theta": {{Shape.Theta:R}},
             "rope_scaling": {{scaling}}, {{bias}} "tie_word_embeddings": {{(Shape.Tied ? "true" : "false")}},
             "vocab_size": {{Shape.Vocab}}, "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2 {{extraConfig}}}
            """));
    }

    /// <summary>Inverse rotary frequencies with the config's scaling, recomputed here from the published formulas.</summary>
    public double[] InverseFrequencies(double theta, string? type, double factor, double low, double high, double original)
    {
        int half = HeadDim / 2;
        var result = new double[half];
        for (int i = 0; i < half; i++)
        {
            double f = Math.Pow(theta, -(2.0 * i) / HeadDim);
            if (type == "linear")
            {
                f /= factor;
            }
            else if (type == "llama3")
            {
                double wavelength = 2 * Math.PI / f;
                double ratio = original / wavelength; // how many wavelengths fit the original context
                if (ratio < low) f /= factor;
                else if (ratio <= high)
                {
                    double s = (ratio - low) / (high - low);
                    f = s * f + (1 - s) * f / factor;
                }
            }

            result[i] = f;
        }

        return result;
    }

    /// <summary>Logits [T, V] of one sequence, in float64, with <paramref name="inverseFrequencies"/> for the rotation.</summary>
    public double[,] Logits(int[] ids, double[] inverseFrequencies)
    {
        var s = Shape;
        int t = ids.Length, d = s.Width, hd = HeadDim, group = s.Heads / s.KeyValueHeads, half = hd / 2;
        double[] W(string name) => Tensors[name].Values;
        var x = new double[t, d];
        for (int i = 0; i < t; i++)
            for (int j = 0; j < d; j++)
                x[i, j] = W("model.embed_tokens.weight")[ids[i] * d + j];

        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            double[]? Bias(string name) => Tensors.TryGetValue(name, out var b) ? b.Values : null;
            var a = Rms(x, W(p + "input_layernorm.weight"), s.Eps);
            var q = Linear(a, W(p + "self_attn.q_proj.weight"), Bias(p + "self_attn.q_proj.bias"), s.Heads * hd);
            var k = Linear(a, W(p + "self_attn.k_proj.weight"), Bias(p + "self_attn.k_proj.bias"), s.KeyValueHeads * hd);
            var v = Linear(a, W(p + "self_attn.v_proj.weight"), Bias(p + "self_attn.v_proj.bias"), s.KeyValueHeads * hd);
            Rotate(q, s.Heads, hd, inverseFrequencies);
            Rotate(k, s.KeyValueHeads, hd, inverseFrequencies);
            var y = new double[t, s.Heads * hd];
            for (int h = 0; h < s.Heads; h++)
            {
                int g = h / group;
                for (int i = 0; i < t; i++)
                {
                    var scores = new double[i + 1];
                    double max = double.NegativeInfinity;
                    for (int j = 0; j <= i; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < hd; e++) dot += q[i, h * hd + e] * k[j, g * hd + e];
                        scores[j] = dot / Math.Sqrt(hd);
                        max = Math.Max(max, scores[j]);
                    }

                    double z = 0;
                    for (int j = 0; j <= i; j++) z += scores[j] = Math.Exp(scores[j] - max);
                    for (int e = 0; e < hd; e++)
                    {
                        double sum = 0;
                        for (int j = 0; j <= i; j++) sum += scores[j] / z * v[j, g * hd + e];
                        y[i, h * hd + e] = sum;
                    }
                }
            }

            AddInto(x, Linear(y, W(p + "self_attn.o_proj.weight"), null, d));
            var m = Rms(x, W(p + "post_attention_layernorm.weight"), s.Eps);
            var gate = Linear(m, W(p + "mlp.gate_proj.weight"), null, s.Inner);
            var up = Linear(m, W(p + "mlp.up_proj.weight"), null, s.Inner);
            for (int i = 0; i < t; i++)
                for (int j = 0; j < s.Inner; j++)
                    gate[i, j] = gate[i, j] / (1 + Math.Exp(-gate[i, j])) * up[i, j];
            AddInto(x, Linear(gate, W(p + "mlp.down_proj.weight"), null, d));
        }

        var o = Rms(x, W("model.norm.weight"), s.Eps);
        double[] head = s.Tied ? W("model.embed_tokens.weight") : W("lm_head.weight");
        return Linear(o, head, null, s.Vocab);

        void Rotate(double[,] m, int heads, int width, double[] inv)
        {
            for (int i = 0; i < t; i++)
                for (int h = 0; h < heads; h++)
                    for (int e = 0; e < half; e++)
                    {
                        double angle = i * inv[e], c = Math.Cos(angle), sn = Math.Sin(angle);
                        double lo = m[i, h * width + e], hi = m[i, h * width + e + half];
                        m[i, h * width + e] = lo * c - hi * sn;
                        m[i, h * width + e + half] = hi * c + lo * sn;
                    }
        }
    }

    /// <summary>Greedy continuation by full recomputation at every step (no cache): the arg-max, stopping at <paramref name="eos"/>.</summary>
    public List<int> Greedy(int[] prompt, int maxNew, double[] inverseFrequencies, IReadOnlyCollection<int> eos)
    {
        var ids = prompt.ToList();
        var output = new List<int>();
        for (int n = 0; n < maxNew; n++)
        {
            var logits = Logits(ids.ToArray(), inverseFrequencies);
            int last = ids.Count - 1, best = 0;
            for (int v = 1; v < Shape.Vocab; v++) if (logits[last, v] > logits[last, best]) best = v;
            output.Add(best);
            if (eos.Contains(best)) break;
            ids.Add(best);
        }

        return output;
    }

    private static void AddInto(double[,] x, double[,] y)
    {
        for (int i = 0; i < x.GetLength(0); i++)
            for (int j = 0; j < x.GetLength(1); j++)
                x[i, j] += y[i, j];
    }

    /// <summary>y = x·Wᵀ + b with W stored [out, in] row-major (torch's nn.Linear).</summary>
    private static double[,] Linear(double[,] x, double[] w, double[]? b, int outWidth)
    {
        int t = x.GetLength(0), inWidth = x.GetLength(1);
        var y = new double[t, outWidth];
        for (int i = 0; i < t; i++)
            for (int o = 0; o < outWidth; o++)
            {
                double sum = b?[o] ?? 0;
                for (int k = 0; k < inWidth; k++) sum += x[i, k] * w[o * inWidth + k];
                y[i, o] = sum;
            }

        return y;
    }

    private static double[,] Rms(double[,] x, double[] w, double eps)
    {
        int t = x.GetLength(0), c = x.GetLength(1);
        var y = new double[t, c];
        for (int i = 0; i < t; i++)
        {
            double meanSquare = 0;
            for (int j = 0; j < c; j++) meanSquare += x[i, j] * x[i, j];
            meanSquare /= c;
            for (int j = 0; j < c; j++) y[i, j] = x[i, j] / Math.Sqrt(meanSquare + eps) * w[j];
        }

        return y;
    }
}
