using Microsoft.Extensions.DependencyInjection;

namespace Orchestrator.Worker;

public static class WorkerServiceCollectionExtensions
{
    /// <summary>Adds the pull worker (and its cell runner) to a silo or embedded host.</summary>
    public static IServiceCollection AddOrchestratorWorker(this IServiceCollection services, Action<WorkerOptions>? configure = null)
    {
        var builder = services.AddOptions<WorkerOptions>();
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        builder.Validate(o =>
        {
            o.Validate();
            return true;
        }).ValidateOnStart();
        // A drain needs the host to wait for it: its shutdown timeout covers the drain plus the releases after it.
        services.AddOptions<Microsoft.Extensions.Hosting.HostOptions>().Configure<Microsoft.Extensions.Options.IOptions<WorkerOptions>>((host, worker) =>
        {
            var needed = TimeSpan.FromSeconds(worker.Value.DrainSeconds + 30);
            if (host.ShutdownTimeout < needed)
            {
                host.ShutdownTimeout = needed;
            }
        });
        services.AddSingleton<CellRunner>();
        services.AddSingleton<ICellRunner>(sp =>
        {
            var options = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<WorkerOptions>>().Value;
            return options.SimulateCellSeconds is { } seconds
                ? new SimulatedCellRunner(TimeSpan.FromSeconds(seconds))
                : new TrainingCellRunner(sp.GetRequiredService<CellRunner>());
        });
        services.AddSingleton<PullWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<PullWorker>());
        return services;
    }
}
