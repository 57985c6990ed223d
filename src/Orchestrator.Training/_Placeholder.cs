namespace Orchestrator.Training;
