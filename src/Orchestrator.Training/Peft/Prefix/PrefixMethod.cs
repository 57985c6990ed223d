using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.Shared;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.Prefix;

/// <summary>
/// Prefix-tuning (Li &amp; Liang 2021): Embedding(P, d) (N(0,1)) → Linear(d, 512) → tanh → Linear(512, 2·L·d), the output
/// entering every layer's attention as P key/value pairs (PEFT_METHODS.md §1; real tokens start at position P). The MLP
/// exists only while training: a checkpoint stores the materialised prefix, 2·L·d·P values (P=10: 491,520 on gpt2-medium,
/// 0.14%; trainable while training at P=5: 25,744,896). Prefix dropout 0 (the paper keeps GPT-2 in eval mode).
/// <para>
/// Low-data initialisation (<c>init_text</c>, e.g. "table-to-text:"): P becomes the number of tokens of
/// <c>' ' + init_text</c>; the target is the frozen base's keys/values on those tokens, and <c>init_steps</c> Adam steps
/// (lr <c>init_lr</c>) fit the reparametrised prefix to it by mean squared error before training starts.
/// </para>
/// </summary>
public sealed class PrefixMethod : PrefixMethodBase
{
    public const string MethodName = "prefix";

    private readonly int _length;
    private readonly bool _lengthGiven;

    private PrefixMethod(PeftOptionReader options) : base(options)
    {
        _length = options.Int("length", 10, "number of virtual tokens P (with init_text: the text's token count)");
        _lengthGiven = options.IsGiven("length");
        HiddenSize = options.Int("hidden", 512, "hidden width k of the reparametrisation MLP (512 for table-to-text, 800 for XSUM)");
        Dropout = options.Rate("dropout", 0.0, "dropout on the prefix key/values while training");
        InitText = options.Text("init_text", null, "initialise from the base's key/values on these words (the paper's low-data trick; e.g. 'table-to-text:')");
        InitSteps = options.Int("init_steps", 500, "Adam steps fitting the prefix to the init_text key/values", min: 0);
        InitLearningRate = options.Double("init_lr", 1e-4, "learning rate of those steps", 0, minExclusive: true);
    }

    public static PrefixMethod Create(PeftOptionReader options) => new(options);

    public string? InitText { get; }

    public int InitSteps { get; }

    public double InitLearningRate { get; }

    /// <summary>Mean squared error between the prefix and the init_text target after the initialisation (NaN without one).</summary>
    public double InitialisationError { get; private set; } = double.NaN;

    protected override int ConfiguredLength => _length;

    public override bool Projection => true;

    public override int HiddenSize { get; }

    public override double Dropout { get; }

    protected override int LengthForCounting()
    {
        if (InitText is not null && !_lengthGiven && !Resolved)
        {
            throw new InvalidOperationException(
                $"{MethodName}: with init_text the prefix length is the text's token count, known once a tokenizer is given (Prepare); pass length too to count parameters beforehand.");
        }

        return Length;
    }

    private bool Resolved { get; set; }

    protected override void ValidateConfig(ModelShape config)
    {
        if (InitText is null || _lengthGiven || Resolved) base.ValidateConfig(config);
    }

    protected override void BeforeCreate(CausalLm model, PeftContext context)
    {
        if (InitText is null) return;
        var tokenizer = context.Tokenizer ?? throw new InvalidOperationException(
            $"{MethodName}: init_text needs the tokenizer (PeftContext.Tokenizer).");
        int count = tokenizer.Encode(" " + InitText).Count;
        if (count == 0)
        {
            throw new ArgumentException($"{MethodName}: init_text '{InitText}' has no tokens.");
        }

        if (_lengthGiven && count != _length)
        {
            throw new ArgumentException(
                $"{MethodName}: init_text '{InitText}' has {count} tokens but length={_length}; omit length or make them equal.");
        }

        ResolveLength(count);
        Resolved = true;
    }

    protected override void AfterCreate(CausalLm model, PeftContext context, IReadOnlyList<Parameter> trainable)
    {
        if (InitText is null) return;
        var ids = context.Tokenizer!.Encode(" " + InitText).Select(i => (long)i).ToArray();
        bool wasTraining = model.training;
        model.eval();
        Tensor target;
        try
        {
            if (model.Shape.IsLlama)
            {
                // Llama: the cache holds keys after rotation at positions 0 … P−1, which is what a prefix stands for.
                using var scope = NewDisposeScope();
                using var input = tensor(ids, [1, ids.Length], ScalarType.Int64, model.Device);
                var presents = new List<LayerKeyValue>();
                model.Hidden(input, presents: presents);
                target = PrefixLayout.FromLayers(presents.Select(p => (p.Key, p.Value)).ToList(), model.Shape).MoveToOuterDisposeScope();
            }
            else
            {
                using var capture = new KeyValueCapture(model.Shape);
                using (NewDisposeScope())
                {
                    using var input = tensor(ids, [1, ids.Length], ScalarType.Int64, model.Device);
                    model.Hidden(input, hooks: capture);
                }

                target = PrefixLayout.FromLayers(capture.Layers, model.Shape);
            }
        }
        finally
        {
            model.train(wasTraining);
        }

        using (target)
        using (enable_grad())
        {
            if (InitSteps > 0)
            {
                using var adam = optim.Adam(trainable, InitLearningRate);
                for (int step = 0; step < InitSteps; step++)
                {
                    using var scope = NewDisposeScope();
                    adam.zero_grad();
                    var loss = nn.functional.mse_loss(Flat(training: false), target);
                    loss.backward();
                    adam.step();
                }
            }

            using (no_grad())
            using (NewDisposeScope())
            {
                InitialisationError = nn.functional.mse_loss(Flat(training: false), target).item<float>();
            }
        }

        foreach (var p in trainable) p.grad?.zero_();
    }
}
