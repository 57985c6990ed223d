using Orchestrator.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.HeadOnly;

/// <summary>
/// Head-only tuning: the output layer is untied from the token embeddings and trained alone on the frozen model. The new
/// head <c>lm_head.weight</c> [V, d] starts as a copy of <c>wte</c> (so the output is unchanged at initialisation); with
/// <c>bias=true</c> it also has a bias <c>lm_head.bias</c> [V], initialised to 0. The input embeddings stay the frozen
/// <c>wte</c>. Parameters (trainable = stored): <c>V·d</c> (+ <c>V</c> with the bias): 51,463,168 on gpt2-medium (14.5%).
/// </summary>
public sealed class HeadOnlyMethod : PeftMethodBase
{
    /// <summary>Eval: the base stays frozen and the method adds its own terms, so it trains as Li &amp; Liang trained their frozen-base method, prefix-tuning (and packs with other cells).</summary>
    public override string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutEval;

    public const string MethodName = "head-only";
    public const string WeightName = "lm_head.weight";
    public const string BiasName = "lm_head.bias";

    private readonly HeadHooks _hooks;
    private Parameter? _weight;
    private Parameter? _bias;

    private HeadOnlyMethod(PeftOptionReader options) : base(options)
    {
        Bias = options.Bool("bias", false, "give the untied output layer a bias (initialised to 0)");
        _hooks = new HeadHooks(this);
    }

    public bool Bias { get; }

    public static HeadOnlyMethod Create(PeftOptionReader options) => new(options);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        long n = (long)config.VocabSize * config.Width + (Bias ? config.VocabSize : 0);
        return new ParameterCounts(n, n);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        _weight = Own(new Parameter(model.OutputWeight.detach().clone()));
        if (!Bias)
        {
            return [_weight];
        }

        _bias = Own(new Parameter(zeros(model.Shape.VocabSize, device: model.Device)));
        return [_weight, _bias];
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors() =>
        _bias is null ? [new(WeightName, _weight!)] : [new(WeightName, _weight!), new(BiasName, _bias)];

    private sealed class HeadHooks(HeadOnlyMethod method) : Gpt2Hooks
    {
        public override Tensor Output(Tensor hidden, Tensor tiedWeight, bool training) =>
            nn.functional.linear(hidden, method._weight!, method._bias);
    }
}
