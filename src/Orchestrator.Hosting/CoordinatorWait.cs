using Orchestrator.Abstractions;

namespace Orchestrator.Hosting;

/// <summary>
/// A client that has just connected may not know the coordinator's grain types yet: it learns them from its gateway, which may be
/// a worker that has not heard of the coordinator (a cluster still starting) or has dropped them while a killed coordinator is
/// replaced. Until then <c>GetGrain</c> throws "Could not find an implementation for interface …". The CLI waits for them here
/// once, when it connects, instead of failing its first call.
/// </summary>
public static class CoordinatorWait
{
    /// <summary>Whether <paramref name="ex"/> says that the client's view of the cluster lists no coordinator grain types.</summary>
    public static bool NoCoordinatorKnown(Exception ex) =>
        ex is ArgumentException && ex.Message.StartsWith("Could not find an implementation for interface", StringComparison.Ordinal);

    /// <summary>Waits until the coordinator's grain types resolve; throws <see cref="TimeoutException"/> naming what is missing after <paramref name="patience"/>.</summary>
    public static async Task WaitAsync(IGrainFactory grains, TimeSpan patience, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            try
            {
                // A reference only: nothing is activated or called.
                _ = grains.GetGrain<ISweepGrain>("coordinator-probe");
                _ = grains.GetGrain<ITrialQueueGrain>(ITrialQueueGrain.DefaultName);
                return;
            }
            catch (Exception ex) when (NoCoordinatorKnown(ex))
            {
                if (DateTime.UtcNow >= deadline)
                {
                    throw new TimeoutException(
                        $"no coordinator silo has joined the cluster (waited {patience.TotalSeconds:0} s for one): start one " +
                        "(deploy/local/cluster.sh start, or a silo with --role coordinator) or see its log", ex);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
            }
        }
    }
}
