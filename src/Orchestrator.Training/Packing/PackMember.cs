using Orchestrator.Training.Peft;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Packing;

/// <summary>
/// One trial of a pack: its method (unprepared; the trainer prepares it on the shared base with the trial's seed), data,
/// options, and afterwards its <see cref="Report"/> or <see cref="Error"/>. It keeps everything a trial trained alone has:
/// parameters, optimizer state, schedule, data order, dev evaluation and best weights.
/// </summary>
public sealed class PackMember
{
    private readonly HashSet<string> _partners = new(StringComparer.Ordinal);

    public PackMember(string id, IPeftMethod method, IReadOnlyList<TrainingExample> train, IReadOnlyList<TrainingExample> dev,
        TrainingOptions options, IProgress<TrainProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        Id = id;
        Method = method ?? throw new ArgumentNullException(nameof(method));
        Train = train ?? throw new ArgumentNullException(nameof(train));
        Dev = dev ?? throw new ArgumentNullException(nameof(dev));
        Options = options ?? throw new ArgumentNullException(nameof(options));
        Progress = progress;
        Cancellation = cancellation;
    }

    /// <summary>The caller's name for the trial (e.g. the cell key), used in <see cref="PackedWith"/>.</summary>
    public string Id { get; }

    public IPeftMethod Method { get; }

    public IReadOnlyList<TrainingExample> Train { get; }

    public IReadOnlyList<TrainingExample> Dev { get; }

    public TrainingOptions Options { get; private set; }

    public IProgress<TrainProgress>? Progress { get; }

    /// <summary>Stops this trial only (e.g. its lease was lost); the others go on.</summary>
    public CancellationToken Cancellation { get; }

    /// <summary>
    /// Every training batch is right-padded to this many positions (null: to its longest row). A pack pads all its rows to
    /// one length, and a row's numbers depend on how far it is padded, so a trial gets the same bits alone and in any pack
    /// only when the length is fixed by the trial's definition, not by its partners: <see cref="TrialRunner"/> uses the
    /// longest encoded example of the dataset's training pool, which every cell of a pack group shares. Members of one pack
    /// must have the same value.
    /// </summary>
    public int? PadLength { get; init; }

    /// <summary>Set when the trial finished training.</summary>
    public TrainReport? Report { get; internal set; }

    /// <summary>Set when the trial failed (diverged, bad data, cancelled); the pack goes on without it.</summary>
    public Exception? Error { get; internal set; }

    /// <summary>Ids of the other trials that shared at least one step with this one.</summary>
    public IReadOnlyCollection<string> PackedWith => _partners;

    /// <summary>Largest number of trials in a step this trial took part in.</summary>
    public int LargestPack { get; private set; }

    // Training state (valid between start and finish).
    internal EncodedExample[] TrainSet = [];
    internal EncodedExample[] DevSet = [];
    internal int[] TargetCounts = [];   // per training example: positions that count in its shifted loss
    internal IReadOnlyList<Parameter> Trainable = [];
    internal optim.Optimizer? Optimizer;
    internal TrainingParts.EpochOrder? Order;
    internal int Step;
    internal readonly List<double> StepLosses = [];
    internal readonly List<(int Step, double Loss)> DevLosses = [];
    internal int BestStep;
    internal double BestDevLoss = double.NaN;
    internal bool BestIsCurrent = true;
    internal Tensor[]? Best;
    internal long Tokens;
    internal System.Diagnostics.Stopwatch Clock = new();
    internal int[] Batch = [];
    internal double LearningRate;

    internal void Start(TrainingOptions effective) => Options = effective;

    internal void NotePartners(IReadOnlyList<PackMember> step)
    {
        LargestPack = Math.Max(LargestPack, step.Count);
        foreach (var m in step)
        {
            if (!ReferenceEquals(m, this)) _partners.Add(m.Id);
        }
    }

    internal void ReleaseState()
    {
        Optimizer?.Dispose();
        Optimizer = null;
        if (Best is not null)
        {
            foreach (var t in Best) t.Dispose();
            Best = null;
        }
    }
}
