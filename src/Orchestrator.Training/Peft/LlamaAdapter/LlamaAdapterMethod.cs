using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Orchestrator.Training.Peft.LlamaAdapter;

/// <summary>
/// LLaMA-Adapter (v1) on GPT-2: each of the top <c>layers</c> blocks gets K adaption prompts [1, K, d] (N(0,1)) whose keys and
/// values come from the frozen c_attn (with its bias, no positions). Every query attends to them with a separate softmax,
/// scaled by a zero-initialised gate, so the base output is unchanged at initialisation.
/// <c>gate=scalar</c> (default, PEFT's ADAPTION_PROMPT for GPT-2): one gate per layer, no tanh, the result added after
/// c_proj; <c>gate=head</c> (the paper): a gate per head through tanh, the result projected by c_proj (without its bias).
/// Parameters: layers·(K·d + gates) (K=10 on all 24 layers of gpt2-medium: 245,784).
/// Stored names: <c>h.{i}.attn.adaption_prompt</c> [1, K, d], <c>h.{i}.attn.adaption_gate</c> [1] or [1, H, 1, 1].
/// <para>
/// On a Llama-family base, as PEFT's <c>adaption_prompt</c> for Llama: the prompt's keys and values come from the frozen
/// k_proj and v_proj (no rotation; one per key/value head, shared by its query heads under grouped-query attention), the
/// queries are the layer's rotated queries, the softmax runs in float32, the gate scales the probabilities (scalar: no
/// tanh, as PEFT; head: tanh per head, as the paper), and o_proj projects the result with the attention's own output.
/// Stored as <c>layers.{i}.self_attn.adaption_prompt</c> and <c>layers.{i}.self_attn.adaption_gate</c>.
/// </para>
/// </summary>
public sealed class LlamaAdapterMethod : PeftMethodBase
{
    /// <summary>Eval: adaption prompts are attention key/values like a prefix (and LLaMA itself has no dropout).</summary>
    public override string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutEval;

    public const string MethodName = "llama-adapter";
    public const string GateScalar = "scalar";
    public const string GateHead = "head";

    private readonly AdaptionHooks _hooks;
    private readonly List<KeyValuePair<string, Tensor>> _stored = [];
    private (Parameter Prompt, Parameter Gate)?[] _layers = [];

    private LlamaAdapterMethod(PeftOptionReader options) : base(options)
    {
        Length = options.Int("length", 10, "adaption prompt length K per layer");
        ConfiguredLayers = options.IntOrKeyword("layers", "all", "number of top blocks with adaption prompts (L_a)");
        Gate = options.Choice("gate", GateScalar, "gating: scalar (PEFT: one gate, no tanh, added after c_proj) or head (paper: tanh of a gate per head, through c_proj)", GateScalar, GateHead);
        _hooks = new AdaptionHooks(this);
    }

    public int Length { get; }

    public int? ConfiguredLayers { get; }

    public string Gate { get; }

    public static LlamaAdapterMethod Create(PeftOptionReader options) => new(options);

    /// <summary>Number of adapted (top) layers for a model with <paramref name="config"/>.</summary>
    public int LayersFor(ModelShape config)
    {
        int layers = ConfiguredLayers ?? config.Layers;
        if (layers > config.Layers)
        {
            throw new ArgumentException($"{MethodName}: layers={layers} exceeds the model's {config.Layers} layers.");
        }

        return layers;
    }

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        long gates = Gate == GateScalar ? 1 : config.Heads;
        long n = LayersFor(config) * ((long)Length * config.Width + gates);
        return new ParameterCounts(n, n);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        var config = model.Shape;
        int adapted = LayersFor(config);
        using var generator = NewGenerator(context, model);
        _layers = new (Parameter, Parameter)?[config.Layers];
        _stored.Clear();
        var trainable = new List<Parameter>();
        for (int i = config.Layers - adapted; i < config.Layers; i++)
        {
            var prompt = Own(new Parameter(empty(1, Length, config.Width, device: model.Device)));
            PeftInit.Normal(prompt, 1.0, generator);
            var gate = Own(new Parameter(Gate == GateScalar ? zeros(1, device: model.Device) : zeros(1, config.Heads, 1, 1, device: model.Device)));
            _layers[i] = (prompt, gate);
            trainable.Add(prompt);
            trainable.Add(gate);
            string prefix = config.IsLlama ? $"layers.{i}.self_attn." : $"h.{i}.attn.";
            _stored.Add(new(prefix + "adaption_prompt", prompt));
            _stored.Add(new(prefix + "adaption_gate", gate));
        }

        return trainable;
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors() => _stored;

    private sealed class AdaptionHooks(LlamaAdapterMethod method) : Gpt2Hooks
    {
        public override Tensor Sublayer(int layer, Gpt2Sublayer sublayer, Module block, Tensor input, Tensor output, bool training)
        {
            if (sublayer != Gpt2Sublayer.Attention || block is not Gpt2Block gpt2 || method._layers[layer] is not { } adaption) return output;
            using var scope = NewDisposeScope();
            var attention = gpt2.Attention;
            long b = input.shape[0], t = input.shape[1], d = input.shape[2];
            long heads = attention.Heads, headDim = d / heads, k = adaption.Prompt.shape[1];
            Tensor weight = attention.Qkv.weight, bias = attention.Qkv.bias!;

            Tensor q = functional.linear(input, weight.narrow(0, 0, d), bias.narrow(0, 0, d))
                .view(b, t, heads, headDim).transpose(1, 2);                                     // [B,H,T,hd]
            Tensor kv = functional.linear(adaption.Prompt, weight.narrow(0, d, 2 * d), bias.narrow(0, d, 2 * d)); // [1,K,2d]
            Tensor key = kv.narrow(2, 0, d).view(1, k, heads, headDim).transpose(1, 2);          // [1,H,K,hd]
            Tensor value = kv.narrow(2, d, d).view(1, k, heads, headDim).transpose(1, 2);
            Tensor scores = q.matmul(key.transpose(2, 3)) * ((Gpt2Model)method.Model!).Config.AttentionScale(layer); // [B,H,T,K], scaled as the base's own scores
            Tensor weighted = functional.softmax(scores, -1).matmul(value);                     // [B,H,T,hd]
            weighted = method.Gate == GateScalar ? weighted * adaption.Gate : weighted * adaption.Gate.tanh();
            Tensor merged = weighted.transpose(1, 2).reshape(b, t, d);
            if (method.Gate == GateHead)
            {
                merged = functional.linear(merged, attention.Output.weight);
            }

            return (output + merged).MoveToOuterDisposeScope();
        }

        public override Tensor AttentionHeads(int layer, LlamaAttention attention, Tensor query, Tensor heads, bool training)
        {
            if (method._layers[layer] is not { } adaption) return heads;
            using var scope = NewDisposeScope();
            long k = adaption.Prompt.shape[1], kvHeads = attention.KeyValueHeads, headDim = attention.HeadDim;
            Tensor key = attention.RepeatKeyValue(attention.Key.forward(adaption.Prompt).view(1, k, kvHeads, headDim).transpose(1, 2));     // [1,H,K,hd]
            Tensor value = attention.RepeatKeyValue(attention.Value.forward(adaption.Prompt).view(1, k, kvHeads, headDim).transpose(1, 2));
            Tensor scores = query.matmul(key.transpose(2, 3)) / Math.Sqrt(headDim);                                                  // [B,H,T,K]
            Tensor probabilities = functional.softmax(scores.to_type(ScalarType.Float32), -1).to_type(query.dtype);
            probabilities = method.Gate == GateScalar ? probabilities * adaption.Gate : probabilities * adaption.Gate.tanh();
            return (heads + probabilities.matmul(value)).MoveToOuterDisposeScope();
        }
    }
}
