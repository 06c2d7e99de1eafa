using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace MiniVmm.Migration.Control;

/// <summary>Service-container registration of <see cref="MigrationTelemetry"/>.</summary>
public static class MigrationTelemetryServiceCollectionExtensions
{
    /// <summary>
    /// Adds one <see cref="MigrationTelemetry"/> whose meter comes from the container's
    /// <see cref="IMeterFactory"/> when there is one (<c>services.AddMetrics()</c>), so the
    /// container owns and disposes it.
    /// </summary>
    public static IServiceCollection AddMigrationTelemetry(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(provider => new MigrationTelemetry(provider.GetService<IMeterFactory>()));
        return services;
    }
}
