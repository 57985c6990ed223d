using Microsoft.EntityFrameworkCore;

namespace Orchestrator.Results;

internal sealed class SweepRow
{
    public required string SweepId { get; set; }
    public required string Name { get; set; }
    public required string SpecYaml { get; set; }
    public required string SpecHash { get; set; }
    public DateTimeOffset SubmittedAt { get; set; }
    public int CellCount { get; set; }
    public required string Status { get; set; }
    public int MaxAttempts { get; set; }
    public int LeaseSeconds { get; set; }
    public required string MetricsJson { get; set; }
    public string? RequiredDevice { get; set; }
    public required string Artifacts { get; set; }
}

internal sealed class CellRow
{
    public required string CellKey { get; set; }
    public required string Dataset { get; set; }
    public required string Split { get; set; }
    public required string Method { get; set; }
    public int Size { get; set; }
    public int Subsample { get; set; }
    public int Seed { get; set; }
    public required string CellJson { get; set; }
}

internal sealed class SweepCellRow
{
    public required string SweepId { get; set; }
    public required string CellKey { get; set; }
}

internal sealed class CellResultRow
{
    public required string CellKey { get; set; }
    public int Attempt { get; set; }
    public required string Status { get; set; }
    public string? Error { get; set; }
    public required string WorkerId { get; set; }
    public required string Device { get; set; }
    public double WallSeconds { get; set; }
    public long PeakMemoryBytes { get; set; }
    public required string ProvenanceJson { get; set; }
    public DateTimeOffset FinishedAt { get; set; }
}

internal sealed class CellMetricRow
{
    public required string CellKey { get; set; }
    public required string Metric { get; set; }
    public double? Value { get; set; }
}

internal sealed class CellOutputRow
{
    public required string CellKey { get; set; }
    public required string OutputsJson { get; set; }
}

/// <summary>
/// The EF Core model over the tables created by <see cref="ResultSchema"/> (the schema is ours, not EF's: no
/// EnsureCreated, no EF migrations). Used for queries; writes are parameterised SQL in <see cref="ResultStore"/>.
/// </summary>
internal sealed class ResultsDbContext(DbContextOptions<ResultsDbContext> options) : DbContext(options)
{
    public DbSet<SweepRow> Sweeps => Set<SweepRow>();
    public DbSet<CellRow> Cells => Set<CellRow>();
    public DbSet<SweepCellRow> SweepCells => Set<SweepCellRow>();
    public DbSet<CellResultRow> CellResults => Set<CellResultRow>();
    public DbSet<CellMetricRow> CellMetrics => Set<CellMetricRow>();
    public DbSet<CellOutputRow> CellOutputs => Set<CellOutputRow>();

    protected override void OnModelCreating(ModelBuilder b)
    {
        b.Entity<SweepRow>(e =>
        {
            e.ToTable("sweeps");
            e.HasKey(x => x.SweepId);
            e.Property(x => x.SweepId).HasColumnName("sweep_id");
            e.Property(x => x.Name).HasColumnName("name");
            e.Property(x => x.SpecYaml).HasColumnName("spec_yaml");
            e.Property(x => x.SpecHash).HasColumnName("spec_hash");
            e.Property(x => x.SubmittedAt).HasColumnName("submitted_at");
            e.Property(x => x.CellCount).HasColumnName("cell_count");
            e.Property(x => x.Status).HasColumnName("status");
            e.Property(x => x.MaxAttempts).HasColumnName("max_attempts");
            e.Property(x => x.LeaseSeconds).HasColumnName("lease_seconds");
            e.Property(x => x.MetricsJson).HasColumnName("metrics_json");
            e.Property(x => x.RequiredDevice).HasColumnName("required_device");
            e.Property(x => x.Artifacts).HasColumnName("artifacts");
        });

        b.Entity<CellRow>(e =>
        {
            e.ToTable("cells");
            e.HasKey(x => x.CellKey);
            e.Property(x => x.CellKey).HasColumnName("cell_key");
            e.Property(x => x.Dataset).HasColumnName("dataset");
            e.Property(x => x.Split).HasColumnName("split");
            e.Property(x => x.Method).HasColumnName("method");
            e.Property(x => x.Size).HasColumnName("size");
            e.Property(x => x.Subsample).HasColumnName("subsample");
            e.Property(x => x.Seed).HasColumnName("seed");
            e.Property(x => x.CellJson).HasColumnName("cell_json");
        });

        b.Entity<SweepCellRow>(e =>
        {
            e.ToTable("sweep_cells");
            e.HasKey(x => new { x.SweepId, x.CellKey });
            e.Property(x => x.SweepId).HasColumnName("sweep_id");
            e.Property(x => x.CellKey).HasColumnName("cell_key");
        });

        b.Entity<CellResultRow>(e =>
        {
            e.ToTable("cell_results");
            e.HasKey(x => x.CellKey);
            e.Property(x => x.CellKey).HasColumnName("cell_key");
            e.Property(x => x.Attempt).HasColumnName("attempt");
            e.Property(x => x.Status).HasColumnName("status");
            e.Property(x => x.Error).HasColumnName("error");
            e.Property(x => x.WorkerId).HasColumnName("worker_id");
            e.Property(x => x.Device).HasColumnName("device");
            e.Property(x => x.WallSeconds).HasColumnName("wall_seconds");
            e.Property(x => x.PeakMemoryBytes).HasColumnName("peak_memory_bytes");
            e.Property(x => x.ProvenanceJson).HasColumnName("provenance_json");
            e.Property(x => x.FinishedAt).HasColumnName("finished_at");
        });

        b.Entity<CellMetricRow>(e =>
        {
            e.ToTable("cell_metrics");
            e.HasKey(x => new { x.CellKey, x.Metric });
            e.Property(x => x.CellKey).HasColumnName("cell_key");
            e.Property(x => x.Metric).HasColumnName("metric");
            e.Property(x => x.Value).HasColumnName("value");
        });

        b.Entity<CellOutputRow>(e =>
        {
            e.ToTable("cell_outputs");
            e.HasKey(x => x.CellKey);
            e.Property(x => x.CellKey).HasColumnName("cell_key");
            e.Property(x => x.OutputsJson).HasColumnName("outputs_json");
        });
    }
}
