namespace Orchestrator.Core;
