using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace Orchestrator.Worker;

/// <summary>
/// Polly pipelines for calls from outside a grain into the cluster (worker pull loop, CLI). Transient cluster
/// faults — a silo being declared dead, a coordinator restarting, a gateway not yet known, a call timing out —
/// are retried with exponential backoff and jitter; domain errors (bad arguments) are not. Each call also has a
/// time limit. This is the only retry layer on these calls (database calls retry inside the results store).
/// </summary>
public static class GrainCalls
{
    public static bool IsTransient(Exception ex) => ex switch
    {
        OperationCanceledException => false,
        TimeoutException => true,
        Polly.Timeout.TimeoutRejectedException => true,
        OrleansException => true,   // SiloUnavailableException, OrleansMessageRejectionException, "no active nodes…"
        System.Net.Sockets.SocketException => true,
        System.IO.IOException => true,
        _ => ex.InnerException is not null && IsTransient(ex.InnerException),
    };

    /// <summary>A pipeline that keeps retrying (up to <paramref name="maxAttempts"/>) with backoff capped at <paramref name="maxDelay"/>.</summary>
    public static ResiliencePipeline Create(ILogger logger, int maxAttempts, TimeSpan callTimeout, TimeSpan maxDelay) =>
        new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
                MaxRetryAttempts = maxAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(200),
                MaxDelay = maxDelay,
                OnRetry = args =>
                {
                    logger.LogDebug("Cluster call failed ({Error}); retry {Attempt} in {Delay}",
                        args.Outcome.Exception?.GetType().Name, args.AttemptNumber + 1, args.RetryDelay);
                    return ValueTask.CompletedTask;
                },
            })
            .AddTimeout(callTimeout)
            .Build();
}
