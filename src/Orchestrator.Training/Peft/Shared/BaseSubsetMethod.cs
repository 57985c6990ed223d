using Orchestrator.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Shared;

/// <summary>The base model's parameter names and shapes, from its configuration only (Linear layout: weights [out, in]).</summary>
public static class BaseShapes
{
    /// <summary>Every parameter of a <see cref="CausalLm"/> with <paramref name="config"/>, in the model's order.</summary>
    public static IReadOnlyList<(string Name, long[] Shape)> Parameters(ModelShape config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.IsLlama) return LlamaParameters(config);
        long d = config.Width;
        var list = new List<(string, long[])>
        {
            ("wte.weight", [config.VocabSize, d]),
            ("wpe.weight", [config.Positions, d]),
        };
        for (int i = 0; i < config.Layers; i++)
        {
            string p = $"h.{i}.";
            list.Add((p + "ln_1.weight", [d]));
            list.Add((p + "ln_1.bias", [d]));
            list.Add((p + "attn.c_attn.weight", [3 * d, d]));
            list.Add((p + "attn.c_attn.bias", [3 * d]));
            list.Add((p + "attn.c_proj.weight", [d, d]));
            list.Add((p + "attn.c_proj.bias", [d]));
            list.Add((p + "ln_2.weight", [d]));
            list.Add((p + "ln_2.bias", [d]));
            list.Add((p + "mlp.c_fc.weight", [4 * d, d]));
            list.Add((p + "mlp.c_fc.bias", [4 * d]));
            list.Add((p + "mlp.c_proj.weight", [d, 4 * d]));
            list.Add((p + "mlp.c_proj.bias", [d]));
        }

        list.Add(("ln_f.weight", [d]));
        list.Add(("ln_f.bias", [d]));
        return list;
    }

    /// <summary>Every parameter of a <see cref="LlamaModel"/> of <paramref name="config"/>'s shape, in the model's order.</summary>
    private static List<(string Name, long[] Shape)> LlamaParameters(ModelShape config)
    {
        long d = config.Width, q = config.QueryWidth, kv = config.KeyValueWidth, inner = config.InnerWidth;
        var list = new List<(string, long[])> { ("embed_tokens.weight", [config.VocabSize, d]) };
        for (int i = 0; i < config.Layers; i++)
        {
            string p = $"layers.{i}.";
            list.Add((p + "input_layernorm.weight", [d]));
            foreach (var (name, rows) in new[] { ("q_proj", q), ("k_proj", kv), ("v_proj", kv) })
            {
                list.Add((p + $"self_attn.{name}.weight", [rows, d]));
                if (config.QkvBias) list.Add((p + $"self_attn.{name}.bias", [rows]));
            }

            list.Add((p + "self_attn.o_proj.weight", [d, q]));
            if (config.OutputBias) list.Add((p + "self_attn.o_proj.bias", [d]));
            list.Add((p + "post_attention_layernorm.weight", [d]));
            list.Add((p + "mlp.gate_proj.weight", [inner, d]));
            list.Add((p + "mlp.up_proj.weight", [inner, d]));
            list.Add((p + "mlp.down_proj.weight", [d, inner]));
        }

        list.Add(("norm.weight", [d]));
        if (!config.TiedOutput) list.Add(("lm_head.weight", [config.VocabSize, d]));
        return list;
    }

    /// <summary>Number of elements of a shape.</summary>
    public static long Numel(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A method that trains a subset of the base's own parameters, chosen by name (full fine-tuning, FT-top-k, BitFit). It stores
/// exactly those parameters (Linear layout, base names).
/// </summary>
public abstract class BaseSubsetMethod : PeftMethodBase
{
    private List<KeyValuePair<string, Tensor>> _selected = [];

    protected BaseSubsetMethod(PeftOptionReader options) : base(options)
    {
    }

    public override bool TrainsBaseWeights => true;

    /// <summary>Whether base parameter <paramref name="name"/> trains.</summary>
    protected abstract bool Selects(string name, ModelShape config);

    /// <summary>Extra checks of the options against a configuration (throw <see cref="ArgumentException"/>).</summary>
    protected virtual void Validate(ModelShape config)
    {
    }

    public override ParameterCounts CountParameters(ModelShape config)
    {
        Validate(config);
        long count = BaseShapes.Parameters(config).Where(p => Selects(p.Name, config)).Sum(p => BaseShapes.Numel(p.Shape));
        return new ParameterCounts(count, count);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        var trainable = new List<Parameter>();
        _selected = [];
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (Selects(name, model.Shape))
            {
                parameter.requires_grad = true;
                trainable.Add(parameter);
                _selected.Add(new(name, parameter));
            }
        }

        return trainable;
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors() => _selected;
}
