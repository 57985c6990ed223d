namespace Orchestrator.Worker;

/// <summary>Settings of one worker (a silo with the worker role, or the embedded host).</summary>
public sealed class WorkerOptions
{
    /// <summary>Stable id reported in leases and result provenance (default: host name + process id).</summary>
    public string WorkerId { get; set; } = $"{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>Cells trained at once. Torch threads are split between them.</summary>
    public int Slots { get; set; } = 1;

    /// <summary>How long an idle slot waits before asking the queue again.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Device kind advertised to the queue (cpu, cuda).</summary>
    public string DeviceKind { get; set; } = "cpu";

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(WorkerId))
        {
            throw new ArgumentException("Worker:WorkerId must not be empty");
        }

        if (Slots is < 1 or > 256)
        {
            throw new ArgumentException($"Worker:Slots must be between 1 and 256, got {Slots}");
        }

        if (PollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Worker:PollInterval must be positive, got {PollInterval}");
        }
    }
}
