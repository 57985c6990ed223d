namespace Orchestrator.TestKit;
