namespace Orchestrator.Abstractions;
