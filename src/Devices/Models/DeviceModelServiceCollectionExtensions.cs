using Microsoft.Extensions.DependencyInjection;

namespace MiniVmm.Devices.Models;

/// <summary>Registers device models: the one line that makes a class a <c>-device</c>.</summary>
public static class DeviceModelServiceCollectionExtensions
{
    /// <summary>
    /// Makes <typeparamref name="T"/> the device model <paramref name="name"/>: <c>-device NAME,...</c>
    /// builds it (its constructor's <see cref="DevicePropertyAttribute"/> parameters are the
    /// properties; other parameters come from the container), and if it implements
    /// <see cref="Migration.Savevm.ISaveStateDevice"/> it migrates.
    /// </summary>
    public static IServiceCollection AddDeviceModel<T>(this IServiceCollection services, string name, string description = "")
        where T : class
    {
        Catalog(services).Add(DeviceModel.Describe<T>(name, description));
        return services;
    }

    /// <summary>The catalog this service collection registers models in (added on first use).</summary>
    public static DeviceModelCatalog Catalog(IServiceCollection services)
    {
        if (services.FirstOrDefault(d => d.ServiceType == typeof(DeviceModelCatalog))?.ImplementationInstance is DeviceModelCatalog catalog)
        {
            return catalog;
        }

        catalog = new DeviceModelCatalog();
        services.AddSingleton(catalog);
        return catalog;
    }
}
