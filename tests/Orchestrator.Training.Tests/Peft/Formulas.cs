using System.Globalization;
using Orchestrator.Training.Models;

namespace Orchestrator.Training.Tests.Peft;

/// <summary>
/// Parameter counts written from the formulas of PEFT_METHODS.md §4 (independently of the methods' own counting code).
/// d = width, L = layers, H = heads, V = vocabulary, N = positions.
/// </summary>
internal static class Formulas
{
    public static long Base(Gpt2Config c)
    {
        long d = c.Width;
        return (long)c.VocabSize * d + (long)c.Positions * d + c.Layers * (12 * d * d + 13 * d) + 2 * d;
    }

    /// <summary>(trainable during training, stored by a checkpoint) for <paramref name="method"/> with <paramref name="options"/>.</summary>
    public static (long Trainable, long Stored) Counts(string method, IReadOnlyDictionary<string, string> options, Gpt2Config c)
    {
        long d = c.Width, L = c.Layers;
        long Int(string key, long fallback) => options.TryGetValue(key, out var v) ? long.Parse(v, CultureInfo.InvariantCulture) : fallback;
        string Str(string key, string fallback) => options.TryGetValue(key, out var v) ? v : fallback;
        (long, long) Same(long n) => (n, n);
        switch (method)
        {
            case "finetune":
            case "proxy": // expert = a fully fine-tuned copy of the base (default anti-expert = base)
                return Same(Base(c));
            case "ft-top2":
            {
                long k = Int("layers", 2);
                long n = k * (12 * d * d + 13 * d) + 2 * d + (Str("embeddings", "false") == "true" ? c.VocabSize * d : 0);
                return Same(n);
            }

            case "adapter":
            {
                long b = Int("bottleneck", 6);
                return Same(L * (2 * d * b + b + 3 * d));
            }

            case "adapter-houlsby":
            {
                long m = Int("bottleneck", 64);
                return Same(L * (2 * (2 * d * m + m + d) + 4 * d) + 2 * d);
            }

            case "adapter-parallel":
            {
                long b = Int("bottleneck", 512);
                return Same(L * (2 * d * b + b + d));
            }

            case "prefix":
            {
                long p = Int("length", 10), k = Int("hidden", 512), flat = 2 * L * d;
                return (p * d + (d * k + k) + (k * flat + flat), flat * p);
            }

            case "ptuning-v2":
            {
                long p = Int("length", 4), flat = 2 * L * d;
                bool projection = Str("projection", "false") == "true";
                long k = Int("hidden", 512);
                return (projection ? p * d + (d * k + k) + (k * flat + flat) : flat * p, flat * p);
            }

            case "prompt":
                return Same(Int("length", 100) * d);
            case "ptuning":
            {
                long p = Int("length", 10);
                bool lstm = Str("encoder", "lstm") == "lstm";
                long h = Str("hidden", "auto") == "auto" ? (lstm ? d / 2 : d) : Int("hidden", 0);
                long encoder = lstm
                    ? 2 * ((4 * h * (d + h) + 8 * h) + (4 * h * (2 * h + h) + 8 * h)) + (2 * h * 2 * h + 2 * h) + (2 * h * d + d)
                    : (d * h + h) + (h * h + h) + (h * d + d);
                return (p * d + encoder, p * d);
            }

            case "lora":
            {
                long r = Int("r", 4);
                return Same(L * 4 * r * d);
            }

            case "bitfit":
                return Same(L * 11 * d + d);
            case "ia3":
                return Same(L * ((Str("targets", "c_attn") == "k,v" ? 2 : 3) * d + 4 * d));
            case "llama-adapter":
            {
                long k = Int("length", 10);
                long layers = Str("layers", "all") == "all" ? L : Int("layers", L);
                long gates = Str("gate", "scalar") == "scalar" ? 1 : c.Heads;
                return Same(layers * (k * d + gates));
            }

            case "ln-tuning":
                return Same(L * 4 * d + 2 * d);
            case "head-only":
                return Same(c.VocabSize * d + (Str("bias", "false") == "true" ? c.VocabSize : 0));
            case "child-tuning-f":
            case "child-tuning-d": // the whole model trains (masked) and is stored
                return Same(Base(c));
            case "bbt": // CMA-ES searches z (dim); a checkpoint stores the prompt A·z + p0 [P, d]
                return (Int("dim", 500), Int("length", 10) * d);
            case "adapter-fusion": // W_Q, W_K, W_V [d, d] and biases per layer; a checkpoint also stores the N source adapters
            {
                long fusion = L * 3 * (d * d + d), b = Int("bottleneck", 6);
                return (fusion, fusion + Int("sources", 2) * L * (2 * d * b + b + 3 * d));
            }

            default:
                throw new ArgumentException($"No formula for method '{method}': add it to {nameof(Formulas)}.");
        }
    }

    /// <summary>
    /// Parameters of a Llama-family base: embeddings (and an untied head), per layer q [d·H·hd], k and v [d·KV·hd] each,
    /// o [H·hd·d], the SwiGLU MLP 3·d·f, two RMSNorm gains, and the final norm.
    /// </summary>
    public static long LlamaBase(LlamaConfig c)
    {
        long d = c.Width, q = (long)c.Heads * c.HeadDim, kv = (long)c.KeyValueHeads * c.HeadDim, f = c.InnerWidth;
        long layer = d * q + 2 * d * kv + q * d + 3 * d * f + 2 * d + (c.QkvBias ? q + 2 * kv : 0);
        return c.VocabSize * d * (c.TieWordEmbeddings ? 1 : 2) + c.Layers * layer + d;
    }

    /// <summary>(trainable, stored) of <paramref name="method"/> on a Llama-family base, written from the PEFT definitions.</summary>
    public static (long Trainable, long Stored) LlamaCounts(string method, IReadOnlyDictionary<string, string> options, LlamaConfig c)
    {
        long d = c.Width, L = c.Layers, q = (long)c.Heads * c.HeadDim, kv = (long)c.KeyValueHeads * c.HeadDim, f = c.InnerWidth;
        long Int(string key, long fallback) => options.TryGetValue(key, out var v) ? long.Parse(v, CultureInfo.InvariantCulture) : fallback;
        string Str(string key, string fallback) => options.TryGetValue(key, out var v) ? v : fallback;
        (long, long) Same(long n) => (n, n);
        switch (method)
        {
            case "finetune":
            case "child-tuning-f":
            case "child-tuning-d":
                return Same(LlamaBase(c));
            case "ft-top2":
            {
                long layer = d * q + 2 * d * kv + q * d + 3 * d * f + 2 * d;
                return Same(Int("layers", 2) * layer + d);
            }

            case "lora":
            {
                long r = Int("r", 4);
                string targets = Str("targets", "q,v");
                long perLayer = targets switch
                {
                    "q,v" => r * (d + q) + r * (d + kv),
                    _ => throw new ArgumentException($"no formula for LoRA targets {targets}"),
                };
                return Same(L * perLayer);
            }

            case "ia3": // PEFT's Llama default: k_proj and v_proj outputs, down_proj input
                return Same(L * (Str("targets", "auto") == "c_attn" ? q + 2 * kv + f : 2 * kv + f));
            case "prefix":
            {
                long p = Int("length", 10), k = Int("hidden", 512), flat = 2 * L * kv;
                return (p * d + (d * k + k) + (k * flat + flat), flat * p);
            }

            case "ptuning-v2":
            {
                long p = Int("length", 4), flat = 2 * L * kv;
                return Same(flat * p);
            }

            case "ln-tuning":
                return Same(L * 2 * d + d);
            case "adapter-houlsby":
            {
                long m = Int("bottleneck", 64);
                return Same(L * (2 * (2 * d * m + m + d) + 2 * d) + d);
            }

            case "head-only":
                return Same(c.VocabSize * d + (Str("bias", "false") == "true" ? c.VocabSize : 0));
            default: // methods that see only the width, layers and heads: the GPT-2 formula on the same sizes
            {
                var same = new Gpt2Config(c.Layers, c.Heads, c.Width, c.VocabSize, c.Positions);
                return Counts(method, options, same);
            }
        }
    }
}
