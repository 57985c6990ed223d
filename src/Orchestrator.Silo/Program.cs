using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orchestrator.Hosting;

// Orchestrator.Silo: a long-running silo process. This build supports `--role all` on localhost clustering
// with a SQLite results file (the embedded topology as a service); Postgres membership and separate
// coordinator/worker roles arrive with cluster mode.
var role = "all";
var slots = 1;
var dataDir = ".orchestrator";
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--role" when i + 1 < args.Length: role = args[++i]; break;
        case "--slots" when i + 1 < args.Length && int.TryParse(args[i + 1], out var s): slots = s; i++; break;
        case "--data-dir" when i + 1 < args.Length: dataDir = args[++i]; break;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}'. Usage: Orchestrator.Silo [--role all] [--slots N] [--data-dir DIR]");
            return 2;
    }
}

if (role != "all")
{
    Console.Error.WriteLine($"--role {role}: only 'all' (localhost clustering) is available in this build; coordinator/worker roles need cluster mode (Postgres membership).");
    return 2;
}

using var host = EmbeddedHost.Build(
    new EmbeddedOptions { DataDirectory = dataDir, WorkerSlots = slots, SiloPort = 11111, GatewayPort = 30000 },
    l => l.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information));
await host.RunAsync();
return 0;
