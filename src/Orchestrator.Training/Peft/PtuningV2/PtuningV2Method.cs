using Orchestrator.Training.Peft.Shared;

namespace Orchestrator.Training.Peft.PtuningV2;

/// <summary>
/// P-tuning v2 (deep prompts): a trainable key/value prefix for every layer, by default a direct table
/// Embedding(P, 2·L·d) (N(0,1)), optionally reparametrised (Embedding → Linear(d, hidden) → tanh → Linear(hidden, 2·L·d));
/// dropout 0.1 on the key/values while training. Equivalent to PEFT's PREFIX_TUNING with prefix_projection=false.
/// P=4: 196,608 parameters on gpt2-medium (0.055%).
/// </summary>
public sealed class PtuningV2Method : PrefixMethodBase
{
    public const string MethodName = "ptuning-v2";

    private readonly int _length;

    private PtuningV2Method(PeftOptionReader options) : base(options)
    {
        _length = options.Int("length", 4, "number of virtual tokens P (pre_seq_len)");
        Projection = options.Bool("projection", false, "reparametrise through an MLP (prefix_projection)");
        HiddenSize = options.Int("hidden", 512, "hidden width of the MLP when projection=true");
        Dropout = options.Rate("dropout", 0.1, "dropout on the prefix key/values while training");
    }

    public static PtuningV2Method Create(PeftOptionReader options) => new(options);

    protected override int ConfiguredLength => _length;

    public override bool Projection { get; }

    public override int HiddenSize { get; }

    public override double Dropout { get; }
}
