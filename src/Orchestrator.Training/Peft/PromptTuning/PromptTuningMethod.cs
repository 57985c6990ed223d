using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.PromptTuning;

/// <summary>
/// Prompt tuning (Lester et al.): P trainable embeddings [P, d] placed before the input embeddings ([P_e; X_e]); they get
/// positions 0..P-1 and the input starts at P. Only P_e trains: P·d parameters (P=100: 102,400 on gpt2-medium, 0.029%).
/// Initialisation <c>init</c>: <c>vocab</c> (default: rows of the token embeddings of ids drawn uniformly from the first
/// 5,000 ids, which for our tokenizers are roughly the most frequent), <c>uniform</c> (U[−0.5, 0.5], the paper's random
/// init), <c>normal</c> (N(0,1), PEFT's RANDOM) or <c>text</c> (the tokens of <c>init_text</c> repeated or cut to P).
/// Stored name: <c>prompt_embeddings</c> [P, d].
/// </summary>
public sealed class PromptTuningMethod : PeftMethodBase, Orchestrator.Training.Packing.IPackableMethod
{
    public const string MethodName = "prompt";
    public const string StoredName = "prompt_embeddings";

    private readonly PromptHooks _hooks;
    private Parameter? _prompt;

    private PromptTuningMethod(PeftOptionReader options) : base(options)
    {
        Length = options.Int("length", 100, "number of prompt embeddings P");
        Init = options.Choice("init", "vocab", "initialisation", "vocab", "uniform", "normal", "text");
        InitText = options.Text("init_text", null, "text whose tokens initialise the prompt (init=text)");
        if (Init == "text" && InitText is null) options.Problem("init_text", "required when init=text");
        if (Init != "text" && InitText is not null) options.Problem("init_text", $"only used with init=text (init is '{Init}')");
        _hooks = new PromptHooks(this);
    }

    public int Length { get; private set; }

    public string Init { get; }

    public string? InitText { get; }

    public static PromptTuningMethod Create(PeftOptionReader options) => new(options);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(Gpt2Config config)
    {
        long n = (long)Length * config.Width;
        return new ParameterCounts(n, n);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(Gpt2Model model, PeftContext context)
    {
        var config = model.Config;
        _prompt = Own(new Parameter(empty(Length, config.Width, device: model.Device)));
        using var generator = NewGenerator(context, model);
        switch (Init)
        {
            case "uniform":
                PeftInit.Uniform(_prompt, 0.5, generator);
                break;
            case "normal":
                PeftInit.Normal(_prompt, 1.0, generator);
                break;
            default:
                long[] ids = Init == "text" ? PromptInit.TextIds(context, MethodName, InitText!, Length) : PromptInit.VocabularyIds(context, config, Length);
                using (var scope = NewDisposeScope())
                {
                    using var index = tensor(ids, ScalarType.Int64, model.Device);
                    _prompt.copy_(model.TokenEmbeddings.index_select(0, index));
                }

                break;
        }

        return [_prompt];
    }

    protected override void OnLoad(Gpt2Model model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context)
    {
        if (stored.TryGetValue(StoredName, out Tensor? table) && table.dim() == 2) Length = (int)table.shape[0];
        _prompt = Own(new Parameter(empty(Length, model.Config.Width, device: model.Device), requires_grad: false));
        CopyStored([new(StoredName, _prompt)], stored);
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors() => [new(StoredName, _prompt!)];

    private sealed class PromptHooks(PromptTuningMethod method) : Gpt2Hooks
    {
        public override int VirtualTokens => method.Length;

        public override Tensor? Prompt(long batchSize, bool training) => method._prompt!.unsqueeze(0);
    }
}
