namespace Orchestrator.Data;
