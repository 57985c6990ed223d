namespace Orchestrator.Worker;
