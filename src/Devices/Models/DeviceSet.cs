using MiniVmm.Migration.Savevm;

namespace MiniVmm.Devices.Models;

/// <summary>
/// The devices of this machine, built from the checked <c>-device</c> options in command-line
/// order. It registers every device that takes part in migration with the savevm registry (in
/// that order; sections are keyed by device id, so the order does not have to match another
/// machine's), finds devices by id for QMP, and disposes them in reverse order.
/// </summary>
public sealed class DeviceSet : ISaveStateDevice, IDisposable
{
    private readonly List<(DeviceContext Context, object Device)> _devices = [];
    private int _disposed;

    /// <summary>Builds every device of <paramref name="configurations"/> with services from <paramref name="services"/>.</summary>
    /// <exception cref="DeviceConfigurationException">A device refused its configuration; the ones built so far are disposed.</exception>
    public DeviceSet(IReadOnlyList<DeviceConfiguration> configurations, IServiceProvider services)
    {
        try
        {
            foreach (DeviceConfiguration configuration in configurations)
            {
                _devices.Add((configuration.Context, configuration.Model.Create(configuration.Context, configuration.Values, services)));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Every device with its context, in command-line order.</summary>
    public IReadOnlyList<(DeviceContext Context, object Device)> Devices => _devices;

    /// <summary>The devices of type <typeparamref name="T"/>, in command-line order.</summary>
    public IEnumerable<T> OfType<T>() => _devices.Select(d => d.Device).OfType<T>();

    /// <summary>The device with id <paramref name="id"/>, or null.</summary>
    public (DeviceContext Context, object Device)? Find(string id) =>
        _devices.FirstOrDefault(d => d.Context.Id == id) is { Device: not null } found ? found : null;

    /// <inheritdoc />
    public void Register(SaveStateRegistry registry)
    {
        foreach (ISaveStateDevice device in OfType<ISaveStateDevice>())
        {
            device.Register(registry);
        }
    }

    /// <summary>Disposes the devices in reverse order; later calls do nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        for (int i = _devices.Count - 1; i >= 0; i--)
        {
            (_devices[i].Device as IDisposable)?.Dispose();
        }
    }
}
