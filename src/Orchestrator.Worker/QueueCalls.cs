using Microsoft.Extensions.Logging;
using Polly;

namespace Orchestrator.Worker;

/// <summary>
/// The worker's calls to the queue grain, each through the <see cref="GrainCalls"/> pipeline (retry with backoff on transient
/// cluster faults, a time limit per call), so that a coordinator restart or a dead silo only pauses the caller.
/// </summary>
internal sealed class QueueCalls(ILogger logger, TimeSpan callTimeout)
{
    private readonly ResiliencePipeline _pipeline = GrainCalls.Create(logger, int.MaxValue, callTimeout, TimeSpan.FromSeconds(2));

    public Task<T> CallAsync<T>(Func<Task<T>> call, CancellationToken ct) =>
        _pipeline.ExecuteAsync(async token => await call().WaitAsync(token), ct).AsTask();
}
