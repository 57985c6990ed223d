namespace Orchestrator.Results;
