using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// A worker's torch threads: its share of the cores it can see (cores / (slots × workers on the machine)) unless set, and a
/// warning when the workers' threads on the machine exceed the cores (the oversubscription that made a 2-worker local
/// cluster several times slower than embedded mode).
/// </summary>
public sealed class WorkerThreadsTests
{
    [Theory]
    [InlineData(2, 1, 1, 0, 2)]   // one worker alone on 2 cores: both
    [InlineData(2, 1, 2, 0, 1)]   // cluster.sh start 2 on 2 cores: one each
    [InlineData(16, 2, 4, 0, 2)]  // 4 workers with 2 slots on 16 cores
    [InlineData(2, 1, 4, 0, 1)]   // never fewer than one
    [InlineData(2, 1, 2, 3, 3)]   // --threads wins
    public void Workers_default_to_their_share_of_the_cores(int cores, int slots, int workers, int threads, int expected)
    {
        var options = new WorkerOptions { Slots = slots, WorkersOnMachine = workers, Threads = threads };
        options.Validate();
        Assert.Equal(expected, options.EffectiveThreads(cores));
    }

    [Fact]
    public void A_worker_warns_when_the_threads_exceed_the_cores_it_can_see()
    {
        Assert.Null(new WorkerOptions { WorkersOnMachine = 2 }.ThreadsWarning(2));
        Assert.Null(new WorkerOptions().ThreadsWarning(2));

        var own = new WorkerOptions { WorkerId = "w1", Threads = 4 }.ThreadsWarning(2);
        Assert.NotNull(own);
        Assert.Contains("worker w1: 4 torch thread(s) per worker (this worker) on 2 visible core(s)", own, StringComparison.Ordinal);

        // Three workers on two cores get one thread each, which is still one too many.
        var crowded = new WorkerOptions { WorkerId = "w3", WorkersOnMachine = 3 }.ThreadsWarning(2);
        Assert.NotNull(crowded);
        Assert.Contains("(3 workers × 1) on 2 visible core(s)", crowded, StringComparison.Ordinal);
        Assert.Contains("--threads N", crowded, StringComparison.Ordinal);

        Assert.Throws<ArgumentException>(() => new WorkerOptions { WorkersOnMachine = 0 }.Validate());
    }
}
