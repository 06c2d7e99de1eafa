using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MiniVmm.Devices.Samples;
using MiniVmm.Host.CommandLine;
using MiniVmm.Devices.Models;
using MiniVmm.Host.Hosting;
using MiniVmm.Host.Qmp.Commands;
using MiniVmm.Migration.Savevm;

namespace MiniVmm.Host.Tests.Devices;

[TestFixture]
public sealed class DeviceModelCatalogTests
{
    private static DeviceModelCatalog Catalog()
    {
        var services = new ServiceCollection();
        services.AddDeviceModel<CounterDevice>("counter", "counts");
        return services.BuildServiceProvider().GetRequiredService<DeviceModelCatalog>();
    }

    private static IReadOnlyList<DeviceConfiguration> Check(params string[] devices) =>
        Catalog().Check(devices.Select(VmOptionsParser.ParseDevice));

    [TestCase("nope,id=a", "-device nope,id=a: 'nope' is not a valid device model name")]
    [TestCase("counter,id=a,foo=1", "-device counter,id=a,foo=1: Property 'counter.foo' not found")]
    [TestCase("counter,start=1", "-device counter,start=1: Parameter 'id' is missing")]
    [TestCase("counter,id=a,start=lots", "-device counter,id=a,start=lots: Parameter 'start' expects uint32")]
    [TestCase("counter,id=a,start=0x100000000", "-device counter,id=a,start=0x100000000: Parameter 'start' expects uint32: 0x100000000 is out of range")]
    [TestCase("counter,id=a,start=-1", "-device counter,id=a,start=-1: Parameter 'start' expects uint32: -1 is out of range")]
    [TestCase("counter,id=a,verbose=maybe", "-device counter,id=a,verbose=maybe: Parameter 'verbose' expects 'on' or 'off'")]
    public void Bad_device_options_get_QEMUs_message_naming_the_option(string option, string message)
    {
        var error = Assert.Throws<DeviceConfigurationException>(() => Check(option));
        Assert.That(error!.Message, Is.EqualTo(message));
    }

    [Test]
    public void A_duplicate_id_is_refused_even_across_models()
    {
        var services = new ServiceCollection();
        services.AddDeviceModel<CounterDevice>("counter");
        services.AddDeviceModel<SecondCounter>("other-counter");
        DeviceModelCatalog catalog = services.BuildServiceProvider().GetRequiredService<DeviceModelCatalog>();

        var error = Assert.Throws<DeviceConfigurationException>(() =>
            catalog.Check([VmOptionsParser.ParseDevice("counter,id=c0"), VmOptionsParser.ParseDevice("other-counter,id=c0")]));
        Assert.That(error!.Message, Is.EqualTo("-device other-counter,id=c0: Duplicate ID 'c0' for device"));
    }

    [Test]
    public void Values_are_converted_to_the_constructor_types_and_defaults_fill_the_rest()
    {
        DeviceConfiguration configuration = Check("counter,id=c0,start=0x10,verbose=on", "counter,id=c1").Last();
        DeviceConfiguration first = Check("counter,id=c0,start=0x10,verbose=on")[0];

        Assert.Multiple(() =>
        {
            Assert.That(first.Values["start"], Is.EqualTo(16u));
            Assert.That(first.Values["verbose"], Is.EqualTo(true));
            Assert.That(configuration.Context, Is.EqualTo(new DeviceContext("c1", "counter", 1, "counter,id=c1")));
            Assert.That(configuration.Values.ContainsKey("start"), Is.False);
        });
    }

    [Test]
    public void Help_lists_models_and_a_models_properties_with_types_and_defaults()
    {
        DeviceModelCatalog catalog = Catalog();

        Assert.That(catalog.Help(), Does.Contain("name \"counter\", desc \"counts\""));
        string properties = catalog.Help("counter");
        Assert.That(properties, Does.Contain("id=<str>").And.Contain("(required)"));
        Assert.That(properties, Does.Contain("start=<uint32>").And.Contain("the first count (default: 0)"));
        Assert.That(properties, Does.Contain("verbose=<bool>").And.Contain("(default: off)"));
        Assert.Throws<DeviceConfigurationException>(() => catalog.Help("nope"));
    }

    [Test]
    public void A_model_whose_property_type_is_not_supported_is_refused_when_registered()
    {
        var services = new ServiceCollection();
        var error = Assert.Throws<ArgumentException>(() => services.AddDeviceModel<BadDevice>("bad"));
        Assert.That(error!.Message, Does.Contain("'when'").And.Contain("DateTime"));
    }

    [Test]
    public void One_class_and_one_line_make_a_command_line_device_that_migrates_and_shows_its_fields()
    {
        VmOptions options = VmOptionsParser.Parse(new RunArguments
        {
            Memory = ["64M"],
            Devices = ["counter,id=c0,start=41", "counter,id=c1"],
        });
        using ServiceProvider services = new ServiceCollection()
            .AddMiniVmmHost(options)
            .AddDeviceModel<CounterDevice>("counter", "counts")
            .BuildServiceProvider();

        SaveStateRegistry registry = services.GetRequiredService<SaveStateRegistry>();
        DeviceSet devices = services.GetRequiredService<DeviceSet>();
        var query = new QueryDeviceCommand(devices, registry);
        JsonNode? shown = query.Execute(new JsonObject { ["id"] = "c0" }, null!);

        Assert.Multiple(() =>
        {
            Assert.That(registry.Entries.Select(e => e.IdStr), Does.Contain("c0/counter").And.Contain("c1/counter"));
            Assert.That(devices.OfType<CounterDevice>().Select(d => (d.Id, d.Count)), Is.EqualTo(new[] { ("c0", 41u), ("c1", 0u) }));
            Assert.That(shown?["model"]?.GetValue<string>(), Is.EqualTo("counter"));
            Assert.That(shown?["vmstate"]?[0]?["fields"]?[0]?["name"]?.GetValue<string>(), Is.EqualTo("count"));
            Assert.That(shown?["vmstate"]?[0]?["fields"]?[0]?["value"]?.GetValue<string>(), Is.EqualTo("0x00000029"), shown?.ToJsonString());
        });
    }

    /// <summary>A second model, to show that ids are unique across models.</summary>
    public sealed class SecondCounter([DeviceProperty("id")] string id)
    {
        /// <summary>The id.</summary>
        public string Id => id;
    }

    /// <summary>A model with a property of a type -device cannot spell.</summary>
    public sealed class BadDevice([DeviceProperty("when")] DateTime when)
    {
        /// <summary>The time.</summary>
        public DateTime When => when;
    }
}
