using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// A worker's slots and threads: each cell trains on one torch thread unless set (so a cell's numbers do not depend on the
/// machine or the mode), the cores are used by slots (a CPU worker's share of them unless set), and a warning when the
/// workers' threads on the machine exceed the cores (the oversubscription that made a 2-worker local cluster several
/// times slower than embedded mode).
/// </summary>
public sealed class WorkerThreadsTests
{
    [Theory]
    [InlineData(2, 0, 1, 0, 2, 1)]    // one worker alone on 2 cores: two cells at once, one thread each
    [InlineData(2, 0, 2, 0, 1, 1)]    // cluster.sh start 2 on 2 cores: one cell each
    [InlineData(16, 0, 4, 0, 4, 1)]   // 4 workers on 16 cores
    [InlineData(2, 0, 4, 0, 1, 1)]    // never fewer than one slot
    [InlineData(16, 0, 1, 4, 4, 4)]   // --threads 4: 16 cores hold 4 cells of 4 threads
    [InlineData(2, 3, 1, 0, 3, 1)]    // --slots wins
    public void Workers_use_their_share_of_the_cores_with_one_thread_per_cell(int cores, int slots, int workers, int threads,
        int expectedSlots, int expectedThreads)
    {
        var options = new WorkerOptions { Slots = slots, WorkersOnMachine = workers, Threads = threads };
        options.Validate();
        Assert.Equal(expectedSlots, options.EffectiveSlots(cores));
        Assert.Equal(expectedThreads, options.EffectiveThreads());
    }

    [Fact]
    public void Cells_train_in_packs_only_on_one_torch_thread_each()
    {
        Assert.True(new WorkerOptions().Packs());
        Assert.True(new WorkerOptions { PackSize = 4, Threads = 1 }.Packs());
        Assert.False(new WorkerOptions { PackSize = 1 }.Packs());
        Assert.False(new WorkerOptions { Threads = 2 }.Packs()); // a split between threads would follow the pack's size
        Assert.False(new WorkerOptions { PackSize = 4, Threads = 4 }.Packs());
    }

    [Fact]
    public void A_gpu_worker_trains_one_cell_at_a_time_unless_told()
    {
        Assert.Equal(1, new WorkerOptions { DeviceKind = "cuda", DeviceCount = 1 }.EffectiveSlots(16));
        Assert.Equal(2, new WorkerOptions { DeviceKind = "cuda", DeviceCount = 1, Slots = 2 }.EffectiveSlots(16));
    }

    [Fact]
    public void A_worker_warns_when_the_threads_exceed_the_cores_it_can_see()
    {
        Assert.Null(new WorkerOptions { WorkersOnMachine = 2 }.ThreadsWarning(2));
        Assert.Null(new WorkerOptions().ThreadsWarning(2));

        var own = new WorkerOptions { WorkerId = "w1", Threads = 4 }.ThreadsWarning(2);
        Assert.NotNull(own);
        Assert.Contains("worker w1: 1 slot(s) × 4 torch thread(s) per worker (this worker) on 2 visible core(s)", own, StringComparison.Ordinal);

        var slots = new WorkerOptions { WorkerId = "w2", Slots = 3 }.ThreadsWarning(2);
        Assert.NotNull(slots);
        Assert.Contains("3 slot(s) × 1 torch thread(s)", slots, StringComparison.Ordinal);

        // Three workers on two cores get one slot of one thread each, which is still one too many.
        var crowded = new WorkerOptions { WorkerId = "w3", WorkersOnMachine = 3 }.ThreadsWarning(2);
        Assert.NotNull(crowded);
        Assert.Contains("(3 workers) on 2 visible core(s)", crowded, StringComparison.Ordinal);
        Assert.Contains("--workers-on-machine N", crowded, StringComparison.Ordinal);

        Assert.Throws<ArgumentException>(() => new WorkerOptions { WorkersOnMachine = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new WorkerOptions { Slots = -1 }.Validate());
    }
}
