namespace Orchestrator.Grains;
