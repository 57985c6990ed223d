using Orchestrator.Training.Models;
using Orchestrator.Training.Optimization;
using Orchestrator.Training.Peft.Shared;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Bbt;

/// <summary>
/// Black-Box Tuning (Sun et al. 2022): P virtual tokens before the input, as in prompt tuning, whose embeddings are
/// <c>p = A·z + p0</c> with z ∈ ℝ^dim optimised by CMA-ES (<see cref="CmaEs"/>) from forward-pass losses only: no gradient
/// flows through the model (every evaluation runs under no_grad with the model in eval mode, and no parameter requires
/// gradients).
/// <list type="bullet">
/// <item>A [P·d, dim] is a fixed random projection, N(0, s²) with s = σ̂ / (√dim · σ0): σ̂ the standard deviation of all entries
/// of the token embeddings and σ0 the initial CMA-ES step size (<c>sigma</c>), as the reference code's <c>random_proj=normal</c>
/// (alpha 1); drawn from the method's generator (trial seed).</item>
/// <item>p0 (<c>init</c>): <c>vocab</c> (default) the embeddings of P ids drawn from the first 5,000 (the reference puts P real
/// vocabulary tokens in the input and adds A·z to their embeddings), <c>text</c> the ids of <c>init_text</c> as prompt
/// tuning takes them (PEFT's TEXT: after the begin token of a Llama-family tokenizer that adds one), or
/// <c>zero</c>.</item>
/// <item>z starts at 0 (the CMA-ES mean), so the initial prompt is p0.</item>
/// </list>
/// Training (<see cref="GradientFree"/>): one CMA-ES generation per trainer step — λ candidates z, each scored by the training
/// loss of that step's batch, then the CMA-ES update; z is set to the new mean, which is what dev evaluation, the best-step
/// snapshot and decoding use. The reported step loss is the mean of the λ candidates' losses. <c>budget</c> &gt; 0 caps the
/// loss evaluations (the run ends once another generation would exceed it), else the trainer's max steps bound the
/// generations. Defaults: <c>length</c> 10 (the paper uses 50; our tiny models want fewer), <c>dim</c> 500, <c>popsize</c>
/// 4 + ⌊3 ln dim⌋ (Hansen; the reference uses 20), <c>sigma</c> 1, <c>covariance</c> <c>full</c> (lazy eigendecomposition)
/// or <c>diagonal</c> (separable CMA-ES, for large dim).
/// Parameters: trainable = dim (the search space; A and p0 are fixed), stored = P·d (the materialised prompt,
/// <c>prompt_embeddings</c> [P, d], the same inference form as prompt tuning).
/// </summary>
public sealed class BbtMethod : PeftMethodBase
{
    /// <summary>Eval: black-box tuning queries the model as an inference service, and dropout would add noise to the losses CMA-ES compares.</summary>
    public override string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutEval;

    public const string MethodName = "bbt";
    public const string StoredName = "prompt_embeddings";

    private readonly BbtHooks _hooks;
    private Parameter? _z;
    private Tensor? _projection;
    private Tensor? _offset;
    private Tensor? _materialised;
    private Parameter? _loaded;
    private CmaEs? _cma;
    private long _evaluations;

    private BbtMethod(PeftOptionReader options) : base(options)
    {
        Length = options.Int("length", 10, "number of virtual tokens P (the paper uses 50)");
        Dim = options.Int("dim", 500, "dimension of z, the vector CMA-ES optimises");
        PopulationSize = options.IntOrKeyword("popsize", "auto", "CMA-ES population size λ (auto: 4 + floor(3 ln dim))");
        if (PopulationSize is 1) options.Problem("popsize", "expected at least 2, got '1'");
        Sigma = options.Double("sigma", 1.0, "initial CMA-ES step size σ0 (also scales the projection: std σ̂/(√dim·σ0))", min: 0, minExclusive: true);
        Budget = options.Int("budget", 0, "maximum number of loss evaluations (0: one CMA-ES generation per trainer step, up to max steps)", min: 0);
        Covariance = options.Choice("covariance", "full", "CMA-ES covariance: full (lazy eigendecomposition) or diagonal (separable)", "full", "diagonal");
        Init = options.Choice("init", "vocab", "prompt offset p0", "vocab", "text", "zero");
        InitText = options.Text("init_text", null, "text whose tokens give p0 (init=text)");
        if (Init == "text" && InitText is null) options.Problem("init_text", "required when init=text");
        if (Init != "text" && InitText is not null) options.Problem("init_text", $"only used with init=text (init is '{Init}')");
        _hooks = new BbtHooks(this);
    }

    public int Length { get; }

    public int Dim { get; }

    /// <summary>λ as given; null: Hansen's default for <see cref="Dim"/>.</summary>
    public int? PopulationSize { get; }

    public double Sigma { get; }

    public int Budget { get; }

    public string Covariance { get; }

    public string Init { get; }

    /// <summary>
    /// With init=vocab, after Prepare: how many ids the initialisation sampled from (ids 0 .. n−1); null otherwise or when
    /// loaded. PEFT's SAMPLE_VOCAB samples the whole embedding matrix, so an export names it only when n is all of it.
    /// </summary>
    public int? SampledVocabulary { get; private set; }

    public string? InitText { get; }

    /// <summary>The CMA-ES state of the current training run (null before training).</summary>
    public CmaEs? Optimizer => _cma;

    /// <summary>The fixed projection A [P·d, dim] (training form; for tests).</summary>
    internal Tensor? Projection => _projection;

    public static BbtMethod Create(PeftOptionReader options) => new(options);

    public override bool GradientFree => true;

    public override Gpt2Hooks? Hooks => Model is null ? null : _hooks;

    public override ParameterCounts CountParameters(ModelShape config) => new(Dim, (long)Length * config.Width);

    protected override IReadOnlyList<Parameter> OnPrepare(CausalLm model, PeftContext context)
    {
        var config = model.Shape;
        long flat = (long)Length * config.Width;
        _z = Own(new Parameter(zeros(Dim, device: model.Device), requires_grad: false));
        _projection = Own(empty(flat, Dim, device: model.Device));
        _offset = Own(zeros(flat, device: model.Device));
        _materialised = Own(empty(Length, config.Width, device: model.Device));
        using var scope = NewDisposeScope();
        using var generator = NewGenerator(context, model, stream: 0xBB7);
        double embeddingStd = model.TokenEmbeddings.std(unbiased: false).item<float>();
        PeftInit.Normal(_projection, embeddingStd / (Math.Sqrt(Dim) * Sigma), generator);
        if (Init != "zero")
        {
            SampledVocabulary = Init == "vocab" ? PromptInit.VocabularyLimit(context, config) : null;
            long[] ids = Init == "text" ? PromptInit.TextIds(context, MethodName, InitText!, Length) : PromptInit.VocabularyIds(context, config, Length);
            using var index = tensor(ids, ScalarType.Int64, model.Device);
            _offset.copy_(model.TokenEmbeddings.index_select(0, index).flatten());
        }

        return [_z];
    }

    public override void OnBeforeTraining(PeftTrainingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_z is null) throw new InvalidOperationException($"{MethodName}: not prepared for training.");
        double[] mean = _z.data<float>().ToArray().Select(v => (double)v).ToArray();
        _cma = new CmaEs(mean, Sigma, PopulationSize, unchecked(context.Options.Seed * 31 + 0xBB7),
            Covariance == "diagonal" ? CmaCovariance.Diagonal : CmaCovariance.Full);
        _evaluations = 0;
    }

    public override GradientFreeResult GradientFreeStep(PeftTrainingContext context, int step, IReadOnlyList<int> batch)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(batch);
        CmaEs cma = _cma ?? throw new InvalidOperationException($"{MethodName}: OnBeforeTraining was not called.");
        Parameter z = _z!;
        using var noGrad = no_grad();
        using var eval = PeftForward.EvalMode(this, context.Model);
        double[][] candidates = cma.Ask();
        var losses = new double[candidates.Length];
        for (int k = 0; k < candidates.Length; k++)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            SetZ(z, candidates[k]);
            using var loss = context.Loss(batch);
            losses[k] = loss.item<float>();
        }

        cma.Tell(candidates, losses);
        SetZ(z, cma.Mean);
        _evaluations += candidates.Length;
        bool finished = Budget > 0 && _evaluations + cma.PopulationSize > Budget;
        double[] finite = losses.Where(double.IsFinite).ToArray();
        return new GradientFreeResult(finite.Length > 0 ? finite.Average() : double.NaN, candidates.Length, finished);
    }

    private static void SetZ(Parameter z, double[] values)
    {
        using var scope = NewDisposeScope();
        z.copy_(tensor(values.Select(v => (float)v).ToArray(), device: z.device));
    }

    /// <summary>The prompt [P, d] for the current z (training form) or the loaded one.</summary>
    private Tensor Prompt()
    {
        if (_loaded is not null) return _loaded;
        return (_projection!.matmul(_z!) + _offset!).view(Length, -1);
    }

    protected override IReadOnlyList<KeyValuePair<string, Tensor>> OnStoredTensors()
    {
        if (_loaded is not null) return [new(StoredName, _loaded)];
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            _materialised!.copy_(Prompt());
        }

        return [new(StoredName, _materialised!)];
    }

    protected override void OnLoad(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context)
    {
        _loaded = Own(new Parameter(empty(Length, model.Shape.Width, device: model.Device), requires_grad: false));
        CopyStored([new(StoredName, _loaded)], stored);
    }

    private sealed class BbtHooks(BbtMethod method) : Gpt2Hooks
    {
        public override int VirtualTokens => method.Length;

        public override Tensor? Prompt(long batchSize, bool training) => method.Prompt().unsqueeze(0);
    }
}
