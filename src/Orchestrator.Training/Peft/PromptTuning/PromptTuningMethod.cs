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
/// init), <c>normal</c> (N(0,1), PEFT's RANDOM), <c>text</c> (as PEFT's TEXT: the ids the base's tokenizer gives
/// <c>' ' + init_text</c>, after its begin token on a Llama-family folder that adds one, repeated or cut to P) or
/// <c>from-cell</c> (pre-trained prompt tuning, PPT, Gu et al. 2022: a copy of the trained prompt of the cell's single
/// dependency, <see cref="PeftContext.Dependencies"/>, which must be a <c>prompt</c> checkpoint of the same P and d; the
/// prompt then trains as usual). Dependencies are ignored with the other inits. A from-cell prompt does not pack
/// (<see cref="Packable"/>): a pack passes no dependencies.
/// Stored name: <c>prompt_embeddings</c> [P, d].
/// </summary>
public sealed class PromptTuningMethod : PeftMethodBase, Orchestrator.Training.Packing.IPackableMethod
{
    /// <summary>Eval: virtual tokens only, trained as Li &amp; Liang trained prefix-tuning (their embedding-only ablation ran in the same code).</summary>
    public override string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutEval;

    public const string MethodName = "prompt";
    public const string StoredName = "prompt_embeddings";

    /// <summary>The <c>init</c> that copies the dependency's trained prompt.</summary>
    public const string InitFromCell = "from-cell";

    private readonly PromptHooks _hooks;
    private Parameter? _prompt;

    private PromptTuningMethod(PeftOptionReader options) : base(options)
    {
        Length = options.Int("length", 100, "number of prompt embeddings P");
        Init = options.Choice("init", "vocab", "initialisation (from-cell: the trained prompt of the cell's single dependency)",
            "vocab", "uniform", "normal", "text", InitFromCell);
        InitText = options.Text("init_text", null, "text whose tokens initialise the prompt (init=text)");
        if (Init == "text" && InitText is null) options.Problem("init_text", "required when init=text");
        if (Init != "text" && InitText is not null) options.Problem("init_text", $"only used with init=text (init is '{Init}')");
        _hooks = new PromptHooks(this);
    }

    public int Length { get; private set; }

    public string Init { get; }

    /// <summary>
    /// With init=vocab, after Prepare: how many ids the initialisation sampled from (ids 0 .. n−1); null otherwise or when
    /// loaded. PEFT's SAMPLE_VOCAB samples the whole embedding matrix, so an export names it only when n is all of it.
    /// </summary>
    public int? SampledVocabulary { get; private set; }

    public string? InitText { get; }

    public static PromptTuningMethod Create(PeftOptionReader options) => new(options);

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    /// <summary>False with <c>init: from-cell</c>: such a trial needs its dependency, which a pack does not pass.</summary>
    public bool Packable => Init != InitFromCell;

    public override ParameterCounts CountParameters(ModelShape config)
    {
        long n = (long)Length * config.Width;
        return new ParameterCounts(n, n);
    }

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        var config = model.Shape;
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
            case InitFromCell:
                CopyFromDependency(_prompt, model, context);
                break;
            default:
                SampledVocabulary = Init == "vocab" ? PromptInit.VocabularyLimit(context, config) : null;
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

    /// <summary>Copies the trained prompt of the single dependency into <paramref name="prompt"/> (init=from-cell).</summary>
    private void CopyFromDependency(Parameter prompt, CausalLm model, PeftContext context)
    {
        const string user = $"{MethodName} (init={InitFromCell})";
        if (context.Dependencies.Count != 1)
        {
            throw new InvalidOperationException(context.Dependencies.Count == 0
                ? $"{user} needs exactly one dependency, the cell whose trained prompt it starts from; none was given."
                : $"{user} needs exactly one dependency, the cell whose trained prompt it starts from; {context.Dependencies.Count} were given ({string.Join(", ", context.Dependencies.Select(d => d.CellKey))}).");
        }

        PeftDependency dependency = context.Dependencies[0];
        PeftDependencies.RequireMethod(dependency, MethodName, user, "a prompt can only start from a trained prompt");
        Dictionary<string, Tensor> stored = PeftDependencies.LoadTensors(dependency, model.Device, user);
        try
        {
            if (!stored.TryGetValue(StoredName, out Tensor? source))
            {
                throw new ArgumentException($"{user}: {PeftDependencies.Describe(dependency)} stores no '{StoredName}'.");
            }

            if (source.dim() != 2 || source.shape[1] != prompt.shape[1])
            {
                throw new ArgumentException(
                    $"{user}: {PeftDependencies.Describe(dependency)} has a prompt of shape [{string.Join(", ", source.shape)}]; the model's width is {prompt.shape[1]}.");
            }

            if (source.shape[0] != Length)
            {
                throw new ArgumentException(
                    $"{user}: {PeftDependencies.Describe(dependency)} has a prompt of length {source.shape[0]}, this cell's length is {Length} (set length: {source.shape[0]}).");
            }

            prompt.copy_(source);
        }
        finally
        {
            PeftDependencies.DisposeAll(stored);
        }
    }

    protected override void OnLoad(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context)
    {
        if (stored.TryGetValue(StoredName, out Tensor? table) && table.dim() == 2) Length = (int)table.shape[0];
        _prompt = Own(new Parameter(empty(Length, model.Shape.Width, device: model.Device), requires_grad: false));
        CopyStored([new(StoredName, _prompt)], stored);
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors() => [new(StoredName, _prompt!)];

    private sealed class PromptHooks(PromptTuningMethod method) : Gpt2Hooks
    {
        public override int VirtualTokens => method.Length;

        public override Tensor? Prompt(long batchSize, bool training) => method._prompt!.unsqueeze(0);
    }
}
