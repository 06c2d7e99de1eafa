using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace MiniVmm.Migration.Savevm;

/// <summary>
/// Service-container registration: adding a device to migration is one class implementing
/// <see cref="ISaveStateDevice"/> and one line, <c>services.AddSaveStateDevice&lt;MyDevice&gt;()</c>.
/// </summary>
public static class SavevmServiceCollectionExtensions
{
    /// <summary>
    /// Adds the savevm registry, built from every registered <see cref="ISaveStateDevice"/> in
    /// registration order, and the default <see cref="SavevmOptions"/> unless already added.
    /// </summary>
    public static IServiceCollection AddSavevm(this IServiceCollection services)
    {
        services.TryAddSingleton(new SavevmOptions());
        services.TryAddSingleton(provider =>
        {
            var registry = new SaveStateRegistry();
            foreach (ISaveStateDevice device in provider.GetServices<ISaveStateDevice>())
            {
                device.Register(registry);
            }

            return registry;
        });
        return services;
    }

    /// <summary>
    /// Adds <typeparamref name="T"/> as a singleton that registers itself with the savevm
    /// registry; resolve it as <typeparamref name="T"/> or as <see cref="ISaveStateDevice"/>.
    /// Adding the same type again changes nothing: the one instance registers once.
    /// </summary>
    public static IServiceCollection AddSaveStateDevice<T>(this IServiceCollection services)
        where T : class, ISaveStateDevice
    {
        services.AddSavevm();
        services.TryAddSingleton<T>();
        services.TryAddEnumerable(
            ServiceDescriptor.Singleton<ISaveStateDevice, T>(provider => provider.GetRequiredService<T>()));
        return services;
    }

    /// <summary>
    /// Adds an already-built device (e.g. one of several of the same type, made from the
    /// command line) that registers itself with the savevm registry.
    /// </summary>
    public static IServiceCollection AddSaveStateDevice(this IServiceCollection services, ISaveStateDevice device)
    {
        services.AddSavevm();
        services.AddSingleton(device);
        return services;
    }
}
