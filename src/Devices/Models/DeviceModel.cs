using System.Reflection;

namespace MiniVmm.Devices.Models;

/// <summary>
/// A device model (QEMU's qdev type): its name, description, the class that implements it and
/// the properties its public constructor declares with <see cref="DevicePropertyAttribute"/>.
/// </summary>
public sealed class DeviceModel
{
    private readonly ConstructorInfo _constructor;

    private DeviceModel(string name, string description, Type type, ConstructorInfo constructor, IReadOnlyList<DeviceProperty> properties)
    {
        Name = name;
        Description = description;
        Type = type;
        _constructor = constructor;
        Properties = properties;
    }

    /// <summary>The name <c>-device</c> takes, e.g. <c>x-sample</c>.</summary>
    public string Name { get; }

    /// <summary>One line for <c>-device help</c>.</summary>
    public string Description { get; }

    /// <summary>The implementing class.</summary>
    public Type Type { get; }

    /// <summary>The properties, in constructor order.</summary>
    public IReadOnlyList<DeviceProperty> Properties { get; }

    /// <summary>The property named <paramref name="name"/>, or null.</summary>
    public DeviceProperty? Find(string name) => Properties.FirstOrDefault(p => p.Name == name);

    /// <summary>Describes <typeparamref name="T"/> as the model <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">T has not exactly one public constructor, or a property of an unsupported type.</exception>
    public static DeviceModel Describe<T>(string name, string description) where T : class => Describe(typeof(T), name, description);

    /// <summary>Describes <paramref name="type"/> as the model <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">The type has not exactly one public constructor, or a property of an unsupported type.</exception>
    public static DeviceModel Describe(Type type, string name, string description)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ConstructorInfo[] constructors = type.GetConstructors();
        if (constructors.Length != 1)
        {
            throw new ArgumentException($"device model '{name}': {type.Name} needs exactly one public constructor, not {constructors.Length}");
        }

        var properties = new List<DeviceProperty>();
        foreach (ParameterInfo parameter in constructors[0].GetParameters())
        {
            if (parameter.GetCustomAttribute<DevicePropertyAttribute>() is { } attribute)
            {
                if (properties.Any(p => p.Name == attribute.Name))
                {
                    throw new ArgumentException($"device model '{name}': property '{attribute.Name}' is declared twice");
                }

                properties.Add(DeviceProperty.For(parameter, attribute));
            }
        }

        return new DeviceModel(name, description, type, constructors[0], properties);
    }

    /// <summary>
    /// Builds a device: each property parameter gets its converted value (or its default), a
    /// <see cref="DeviceContext"/> parameter the context, and every other parameter a service
    /// from <paramref name="services"/> (null or its default when the container has none).
    /// </summary>
    /// <exception cref="DeviceConfigurationException">The constructor refused the values.</exception>
    public object Create(DeviceContext context, IReadOnlyDictionary<string, object?> values, IServiceProvider services)
    {
        ParameterInfo[] parameters = _constructor.GetParameters();
        object?[] arguments = new object?[parameters.Length];
        for (int i = 0; i < parameters.Length; i++)
        {
            ParameterInfo parameter = parameters[i];
            if (parameter.GetCustomAttribute<DevicePropertyAttribute>() is { } attribute)
            {
                arguments[i] = values.TryGetValue(attribute.Name, out object? value) ? value : parameter.DefaultValue;
            }
            else if (parameter.ParameterType == typeof(DeviceContext))
            {
                arguments[i] = context;
            }
            else
            {
                arguments[i] = services.GetService(parameter.ParameterType) ?? (parameter.HasDefaultValue ? parameter.DefaultValue : null);
            }
        }

        try
        {
            return _constructor.Invoke(arguments);
        }
        catch (TargetInvocationException failure) when (failure.InnerException is { } inner)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner).Throw();
            throw;
        }
    }
}
