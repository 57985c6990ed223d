namespace Orchestrator.Worker;

/// <summary>Settings of one worker (a silo with the worker role, or the embedded host).</summary>
public sealed class WorkerOptions
{
    /// <summary>Stable id reported in leases and result provenance (default: host name + process id).</summary>
    public string WorkerId { get; set; } = $"{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>
    /// Cells trained at once, each on its own thread with <see cref="EffectiveThreads"/> torch threads. 0 (the default): on a
    /// CPU worker its share of the cores, cores / (<see cref="WorkersOnMachine"/> × threads per cell); on a GPU worker one.
    /// Each slot holds its own copy of the model being trained: lower it when memory is short.
    /// </summary>
    public int Slots { get; set; }

    /// <summary>How long an idle slot waits before asking the queue again.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Device kind advertised to the queue (cpu, cuda).</summary>
    public string DeviceKind { get; set; } = "cpu";

    /// <summary>Number of devices of that kind (0 for cpu).</summary>
    public int DeviceCount { get; set; }

    /// <summary>
    /// Benchmarks and queue tests only: when set, cells are not trained; each sleeps this long and reports a
    /// pseudo-score (everything else — leases, heartbeats, the store — is real). Null in normal use.
    /// </summary>
    public double? SimulateCellSeconds { get; set; }

    /// <summary>
    /// Packed training: how many cells of one pack group (same data, base, method and options; methods prefix, prompt,
    /// ptuning-v2, lora, ia3) a slot trains at once on one shared base. 1 turns packing off, and so do more than one torch
    /// thread per cell (<see cref="Packs"/>). 0 (the default) chooses K
    /// per pack group from a quick calibration (trial-steps per second for K = 1, 2, 4, … on the group's own data, stopping
    /// where the gain flattens or memory would not allow it), at most <see cref="MaxPackSize"/>.
    /// </summary>
    public int PackSize { get; set; }

    /// <summary>
    /// Torch intra-op threads each cell trains on. 0 (the default): <see cref="Orchestrator.Training.TorchRuntime.ThreadsEnvironmentVariable"/>
    /// when set, else 1. On a CPU the thread count changes the order of float sums and so a cell's numbers; one thread per
    /// cell, with the cores used by <see cref="Slots"/>, gives every mode (embedded, a cluster of any size) the same numbers
    /// for the same cell. The count is recorded with each result, and <c>reproduce</c> reruns a cell on it.
    /// </summary>
    public int Threads { get; set; }

    /// <summary>
    /// Worker processes sharing this machine's cores (1: this one alone). The default <see cref="Slots"/> is this worker's
    /// fair share of them. <c>deploy/local/cluster.sh start N</c> gives each worker N.
    /// </summary>
    public int WorkersOnMachine { get; set; } = 1;

    /// <summary>The torch threads each cell trains on: <see cref="Threads"/>, or the environment's, or 1.</summary>
    public int EffectiveThreads() =>
        Threads > 0 ? Threads : Orchestrator.Training.TorchRuntime.ThreadsFromEnvironment() ?? 1;

    /// <summary>
    /// Whether this worker trains packable cells in packs: not with <see cref="PackSize"/> 1, and not when each cell trains on
    /// more than one torch thread (<see cref="EffectiveThreads"/>). On several threads torch splits an elementwise kernel
    /// (SwiGLU's silu, for one) between them at a point that follows the whole batch's size, and elements on either side of
    /// a split go through its vectorised or its scalar code, which round transcendental functions differently: a cell's rows
    /// would get other last bits in a pack than alone (measured on llama-tiny: prefix and prompt training losses in the 8th
    /// digit). On one thread each kernel runs over the whole tensor in one piece, so a cell's rows get the same operations
    /// whoever shares the batch (the scalar tail at the very end is the last position of the last row, which no loss reads).
    /// </summary>
    public bool Packs() => PackSize != 1 && EffectiveThreads() == 1;

    /// <summary>The cells this worker trains at once when it sees <paramref name="cores"/> cores: <see cref="Slots"/>, or its share.</summary>
    public int EffectiveSlots(int cores) =>
        Slots > 0 ? Slots : DeviceKind == "cpu" ? Math.Max(1, cores / (WorkersOnMachine * EffectiveThreads())) : 1;

    /// <summary>
    /// A warning when the torch threads of the workers on this machine (slots × threads per cell × workers) exceed the cores
    /// this worker can see (libtorch's threads then fight for the cores and training slows down several times); null otherwise.
    /// </summary>
    public string? ThreadsWarning(int cores)
    {
        int slots = EffectiveSlots(cores), threads = EffectiveThreads();
        if (slots * threads * WorkersOnMachine <= cores) return null;
        string workers = WorkersOnMachine == 1 ? "this worker" : $"{WorkersOnMachine} workers";
        return $"worker {WorkerId}: {slots} slot(s) × {threads} torch thread(s) per worker ({workers}) on {cores} visible core(s): more " +
               "threads than cores make training several times slower. Give each worker its share of the cores (--slots N, " +
               "--threads N, or --workers-on-machine N to divide them; deploy/local/cluster.sh start N does this).";
    }

    /// <summary>Upper bound of the calibrated pack size.</summary>
    public int MaxPackSize { get; set; } = 16;

    /// <summary>
    /// The artifact store (trained methods that later stages need): a directory every worker of the cluster can read and
    /// write, e.g. a shared file system or a mounted bucket. Null: <c>artifacts</c> under the data directory.
    /// </summary>
    public string? ArtifactDirectory { get; set; }

    /// <summary>The artifact directory in effect.</summary>
    public string ResolvedArtifactDirectory =>
        Path.GetFullPath(ArtifactDirectory ?? Path.Combine(Orchestrator.Training.BaseModelCache.DefaultDataDirectory, "artifacts"));

    /// <summary>
    /// Graceful stop (SIGTERM, host shutdown): seconds the worker lets its running cells finish before it stops them. It leases
    /// nothing new meanwhile; cells still running when the time is up are stopped and their leases released, which charges
    /// no attempt. 0 (the default): stop and release at once. The host's shutdown timeout is raised to cover it; give the
    /// process at least this long plus 30 s before it is killed (Kubernetes: <c>terminationGracePeriodSeconds</c>).
    /// </summary>
    public double DrainSeconds { get; set; }

    /// <summary>
    /// Where computed results wait while the database cannot be written (a local directory; it must survive a restart of the
    /// worker). A result is saved here before it is written, deleted once written, and uploaded first when a worker starts.
    /// Null: <c>spool</c> under the data directory.
    /// </summary>
    public string? SpoolDirectory { get; set; }

    /// <summary>The spool directory in effect.</summary>
    public string ResolvedSpoolDirectory =>
        Path.GetFullPath(SpoolDirectory ?? Path.Combine(Orchestrator.Training.BaseModelCache.DefaultDataDirectory, "spool"));

    /// <summary>
    /// How long a computed result's write is retried while the database is unreachable (the lease is renewed meanwhile).
    /// After that the result stays in the spool, to be uploaded when the worker next starts.
    /// </summary>
    public TimeSpan ResultWritePatience { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Time limit of one call to the cluster (lease, renew, complete).</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(15);

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(WorkerId))
        {
            throw new ArgumentException("Worker:WorkerId must not be empty");
        }

        if (Slots is < 0 or > 256)
        {
            throw new ArgumentException($"Worker:Slots must be 0 (its share of the cores) or between 1 and 256, got {Slots}");
        }

        if (DeviceKind is not ("cpu" or "cuda"))
        {
            throw new ArgumentException($"Worker:DeviceKind must be cpu or cuda, got '{DeviceKind}'");
        }

        if (SimulateCellSeconds is < 0)
        {
            throw new ArgumentException($"Worker:SimulateCellSeconds must not be negative, got {SimulateCellSeconds}");
        }

        if (PackSize is < 0 or > 256)
        {
            throw new ArgumentException($"Worker:PackSize must be 0 (calibrate), 1 (no packing) or up to 256, got {PackSize}");
        }

        if (Threads is < 0 or > 1024)
        {
            throw new ArgumentException($"Worker:Threads must be 0 (one per cell) or a positive number of threads, got {Threads}");
        }

        if (WorkersOnMachine is < 1 or > 1024)
        {
            throw new ArgumentException($"Worker:WorkersOnMachine must be between 1 and 1024, got {WorkersOnMachine}");
        }

        if (MaxPackSize is < 1 or > 256)
        {
            throw new ArgumentException($"Worker:MaxPackSize must be between 1 and 256, got {MaxPackSize}");
        }

        if (ArtifactDirectory is { } artifacts && string.IsNullOrWhiteSpace(artifacts))
        {
            throw new ArgumentException("Worker:ArtifactDirectory must not be blank (leave it unset for <data dir>/artifacts)");
        }

        if (DrainSeconds is < 0 or > 86_400 || double.IsNaN(DrainSeconds))
        {
            throw new ArgumentException($"Worker:DrainSeconds must be between 0 and 86400, got {DrainSeconds}");
        }

        if (SpoolDirectory is { } spool && string.IsNullOrWhiteSpace(spool))
        {
            throw new ArgumentException("Worker:SpoolDirectory must not be blank (leave it unset for <data dir>/spool)");
        }

        if (ResultWritePatience <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Worker:ResultWritePatience must be positive, got {ResultWritePatience}");
        }

        if (PollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Worker:PollInterval must be positive, got {PollInterval}");
        }
    }
}
