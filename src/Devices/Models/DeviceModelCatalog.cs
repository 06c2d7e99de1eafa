using System.Text;

namespace MiniVmm.Devices.Models;

/// <summary>
/// Every device model <c>-device</c> knows (QEMU's qdev type registry): the one place
/// <c>-device</c> options are checked against, with QEMU's messages, and where
/// <c>-device help</c> and <c>-device NAME,help</c> come from.
/// </summary>
public sealed class DeviceModelCatalog
{
    /// <summary>The property every device takes besides its own: QEMU's qdev <c>id</c>.</summary>
    public const string IdProperty = "id";

    private readonly Dictionary<string, DeviceModel> _models = new(StringComparer.Ordinal);

    /// <summary>The models, by name.</summary>
    public IEnumerable<DeviceModel> Models => _models.Values.OrderBy(m => m.Name, StringComparer.Ordinal);

    /// <summary>Adds a model.</summary>
    /// <exception cref="ArgumentException">A model of that name exists.</exception>
    public void Add(DeviceModel model)
    {
        if (!_models.TryAdd(model.Name, model))
        {
            throw new ArgumentException($"device model '{model.Name}' is registered twice");
        }
    }

    /// <summary>The model named <paramref name="name"/>, or null.</summary>
    public DeviceModel? Find(string name) => _models.GetValueOrDefault(name);

    /// <summary>
    /// Checks every <c>-device</c> option and converts its properties: an unknown model, an
    /// unknown or missing property, a bad value or an id used twice is an error worded as QEMU
    /// words it.
    /// </summary>
    /// <exception cref="DeviceConfigurationException">The first option that is wrong, named.</exception>
    public IReadOnlyList<DeviceConfiguration> Check(IEnumerable<DeviceSpec> specs)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var perModel = new Dictionary<string, int>(StringComparer.Ordinal);
        var result = new List<DeviceConfiguration>();
        foreach (DeviceSpec spec in specs)
        {
            DeviceModel model = Find(spec.Driver)
                ?? throw new DeviceConfigurationException($"-device {spec.Text}: '{spec.Driver}' is not a valid device model name");
            var values = new Dictionary<string, object?>(StringComparer.Ordinal);
            string? id = null;
            foreach ((string key, string text) in spec.Properties)
            {
                DeviceProperty? property = model.Find(key);
                if (property is null && key != IdProperty)
                {
                    throw new DeviceConfigurationException($"-device {spec.Text}: Property '{model.Name}.{key}' not found");
                }

                if (key == IdProperty)
                {
                    id = text.Length > 0 ? text : throw new DeviceConfigurationException($"-device {spec.Text}: the id is empty");
                }

                if (property is not null)
                {
                    object? value = property.Convert(text, out string? error);
                    values[key] = error is null ? value : throw new DeviceConfigurationException($"-device {spec.Text}: {error}");
                }
            }

            if (model.Properties.FirstOrDefault(p => p.Required && !values.ContainsKey(p.Name)) is { } missing)
            {
                throw new DeviceConfigurationException($"-device {spec.Text}: Parameter '{missing.Name}' is missing");
            }

            if (id is not null && !ids.Add(id))
            {
                throw new DeviceConfigurationException($"-device {spec.Text}: Duplicate ID '{id}' for device");
            }

            int index = perModel.GetValueOrDefault(model.Name);
            perModel[model.Name] = index + 1;
            result.Add(new DeviceConfiguration(model, new DeviceContext(id, model.Name, index, spec.Text), values));
        }

        return result;
    }

    /// <summary>What <c>-device help</c> prints: every model with its description.</summary>
    public string Help()
    {
        var text = new StringBuilder("Devices (-device NAME,help lists a device's properties):\n");
        foreach (DeviceModel model in Models)
        {
            text.Append("name \"").Append(model.Name).Append("\", desc \"").Append(model.Description).Append("\"\n");
        }

        return text.ToString();
    }

    /// <summary>What <c>-device NAME,help</c> prints: the model's properties with their types, defaults and descriptions.</summary>
    /// <exception cref="DeviceConfigurationException">No such model.</exception>
    public string Help(string name)
    {
        DeviceModel model = Find(name) ?? throw new DeviceConfigurationException($"-device {name},help: '{name}' is not a valid device model name");
        var text = new StringBuilder($"{model.Name} options:\n");
        if (model.Find(IdProperty) is null)
        {
            text.Append("  id=<str>".PadRight(25)).Append("- the device's id (optional)\n");
        }

        foreach (DeviceProperty property in model.Properties)
        {
            string head = $"  {property.Name}=<{property.TypeName}>";
            text.Append(head.PadRight(25)).Append("- ").Append(property.Description);
            text.Append(property.DefaultText switch
            {
                null => " (required)",
                "" => "",
                string fallback => $" (default: {fallback})",
            }).Append('\n');
        }

        return text.ToString();
    }
}
