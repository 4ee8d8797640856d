"""The simulated fleet: deterministic vehicles whose state drifts with emulator time.

Generation draws everything (ids, VINs, models, initial state) from one
`random.Random(seed)`, so a seed always yields the same fleet. Time-dependent
state (odometer, position, battery and fuel) is integrated lazily: a vehicle
catches up to the clock whenever it is read, so an idle fleet costs nothing.

Model: an unplugged vehicle is "out driving" at its average speed, using
energy as it goes (EVs stop moving at 10 % charge; combustion vehicles refuel
at 10 % fuel); a plugged-in vehicle is parked, and charges towards its charge
limit while charging.
"""

from __future__ import annotations

import math
import random
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import attrs

from ._clock import Clock, iso
from ._units import wire

Powertrain = Literal["EV", "ICE", "PHEV"]

_MIN_DRIVING_LEVEL = 0.1


@attrs.frozen
class ModelSpec:
    make: str
    model: str
    powertrain: Powertrain
    years: tuple[int, int]
    battery_kwh: float | None = None
    tank_liters: float | None = None
    tire_kpa: float = 240.0
    sunroof: bool = False


def _ev(make: str, model: str, years: tuple[int, int], kwh: float, **kw: Any) -> ModelSpec:
    return ModelSpec(make, model, "EV", years, battery_kwh=kwh, **kw)


def _ice(make: str, model: str, years: tuple[int, int], liters: float, **kw: Any) -> ModelSpec:
    return ModelSpec(make, model, "ICE", years, tank_liters=liters, **kw)


def _phev(
    make: str, model: str, years: tuple[int, int], kwh: float, liters: float, **kw: Any
) -> ModelSpec:
    return ModelSpec(make, model, "PHEV", years, battery_kwh=kwh, tank_liters=liters, **kw)


CATALOGUE: tuple[ModelSpec, ...] = (
    _ev("TESLA", "Model 3", (2018, 2024), 75.0, tire_kpa=290.0, sunroof=True),
    _ev("TESLA", "Model Y", (2020, 2024), 75.0, tire_kpa=290.0, sunroof=True),
    _ev("TESLA", "Model S", (2016, 2024), 100.0, tire_kpa=290.0, sunroof=True),
    _ev("TESLA", "Model X", (2016, 2024), 100.0, tire_kpa=290.0),
    _ev("NISSAN", "LEAF", (2018, 2024), 62.0, tire_kpa=250.0),
    _ev("NISSAN", "Ariya", (2023, 2024), 87.0),
    _ice("NISSAN", "Rogue", (2017, 2024), 55.0),
    _ice("FORD", "F-150", (2015, 2024), 98.0, tire_kpa=241.0),
    _ev("FORD", "Mustang Mach-E", (2021, 2024), 91.0, sunroof=True),
    _ev("FORD", "F-150 Lightning", (2022, 2024), 131.0),
    _phev("FORD", "Escape Plug-In Hybrid", (2020, 2024), 14.4, 42.0),
    _ev("BMW", "i4", (2022, 2024), 81.0, sunroof=True),
    _ice("BMW", "330i", (2019, 2024), 59.0, sunroof=True),
    _phev("BMW", "X5 xDrive50e", (2019, 2024), 25.7, 69.0, sunroof=True),
    _ev("AUDI", "Q4 e-tron", (2022, 2024), 82.0, sunroof=True),
    _ice("AUDI", "Q5", (2018, 2024), 70.0, sunroof=True),
    _phev("AUDI", "Q5 55 TFSI e", (2020, 2024), 17.9, 54.0, sunroof=True),
    _ev("CHEVROLET", "Bolt EV", (2017, 2023), 65.0, tire_kpa=262.0),
    _ice("CHEVROLET", "Silverado 1500", (2016, 2024), 91.0),
    _ice("CHEVROLET", "Equinox", (2018, 2024), 56.0),
    _phev("CHEVROLET", "Volt", (2016, 2019), 18.4, 34.0),
    _ev("CADILLAC", "LYRIQ", (2023, 2024), 102.0, sunroof=True),
    _ice("CADILLAC", "Escalade", (2018, 2024), 91.0, sunroof=True),
    _ice("TOYOTA", "RAV4", (2019, 2024), 55.0),
    _ice("TOYOTA", "Camry", (2018, 2024), 60.0),
    _phev("TOYOTA", "RAV4 Prime", (2021, 2024), 18.1, 55.0),
    _phev("TOYOTA", "Prius Prime", (2017, 2024), 13.6, 43.0),
    _ev("VOLKSWAGEN", "ID.4", (2021, 2024), 82.0),
    _ice("VOLKSWAGEN", "Jetta", (2019, 2024), 50.0, sunroof=True),
    _ev("HYUNDAI", "IONIQ 5", (2022, 2024), 77.4),
    _ice("HYUNDAI", "Tucson", (2019, 2024), 54.0),
    _ev("KIA", "EV6", (2022, 2024), 77.4),
    _ice("KIA", "Sorento", (2019, 2024), 67.0),
    _phev("JEEP", "Wrangler 4xe", (2021, 2024), 17.3, 65.0),
    _ice("JEEP", "Grand Cherokee", (2018, 2024), 87.0),
)

# The first vehicles of every fleet come from this list, so that even a small
# fleet has each powertrain and each make with make-specific endpoints.
_PRIMER: tuple[tuple[str, str], ...] = (
    ("TESLA", "Model 3"),
    ("FORD", "F-150"),
    ("TOYOTA", "RAV4 Prime"),
    ("NISSAN", "LEAF"),
    ("BMW", "i4"),
    ("AUDI", "Q4 e-tron"),
    ("CHEVROLET", "Bolt EV"),
    ("CADILLAC", "LYRIQ"),
)

_POWERTRAIN_WEIGHTS: tuple[tuple[Powertrain, float], ...] = (
    ("ICE", 0.5),
    ("EV", 0.35),
    ("PHEV", 0.15),
)

_WMI: dict[str, str] = {
    "TESLA": "5YJ",
    "NISSAN": "1N4",
    "FORD": "1FT",
    "BMW": "WBA",
    "AUDI": "WAU",
    "CHEVROLET": "1G1",
    "CADILLAC": "1GY",
    "TOYOTA": "JTM",
    "VOLKSWAGEN": "WVW",
    "HYUNDAI": "KM8",
    "KIA": "KNA",
    "JEEP": "1C4",
}

_HOMES: tuple[tuple[float, float], ...] = (
    (37.7749, -122.4194),
    (34.0522, -118.2437),
    (40.7128, -74.0060),
    (41.8781, -87.6298),
    (30.2672, -97.7431),
    (47.6062, -122.3321),
    (42.3601, -71.0589),
    (39.7392, -104.9903),
    (43.6532, -79.3832),
    (48.1351, 11.5820),
    (52.5200, 13.4050),
    (48.8566, 2.3522),
    (51.5074, -0.1278),
    (52.3676, 4.9041),
)

_DTC_POOL: tuple[tuple[str, str], ...] = (
    ("P0420", "SYSTEM_ENGINE"),
    ("P0171", "SYSTEM_ENGINE"),
    ("C0750", "SYSTEM_TPMS"),
    ("C1234", "SYSTEM_ABS"),
    ("B0001", "SYSTEM_AIRBAG"),
    ("P302D", "SYSTEM_MIL"),
)

_SYSTEMS: tuple[str, ...] = (
    "SYSTEM_ABS",
    "SYSTEM_AIRBAG",
    "SYSTEM_BRAKE_FLUID",
    "SYSTEM_ENGINE",
    "SYSTEM_MIL",
    "SYSTEM_TPMS",
)

_SERVICE_TASKS: tuple[tuple[str, str], ...] = (
    ("3262", "Tire rotation"),
    ("3041", "Cabin air filter replacement"),
    ("1001", "Multi-point inspection"),
    ("2210", "Brake fluid exchange"),
    ("4100", "Wiper blade replacement"),
    ("1500", "Oil and filter change"),
)

_VIN_VALUES = dict(
    zip(
        "ABCDEFGHJKLMNPRSTUVWXYZ",
        (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9),
        strict=True,
    )
)
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_VIN_YEARS = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 2010 = A, cycling every 30 years


def _vin(rng: random.Random, make: str, year: int) -> str:
    body = _WMI.get(make, "1XX") + "".join(rng.choice(_VIN_CHARS) for _ in range(5))
    tail = _VIN_YEARS[(year - 2010) % 30] + rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ")
    tail += "".join(rng.choice("0123456789") for _ in range(6))
    draft = body + "0" + tail
    total = sum(
        (int(c) if c.isdigit() else _VIN_VALUES[c]) * w
        for c, w in zip(draft, _VIN_WEIGHTS, strict=True)
    )
    check = "X" if total % 11 == 10 else str(total % 11)
    return body + check + tail


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@attrs.define(eq=False, kw_only=True)
class SimulatedVehicle:
    """One emulated vehicle. Its attributes are the emulator's live state.

    Tests may read and change any public attribute mid-test; the API serves
    whatever is there (e.g. set ``is_plugged_in = True`` before a start-charge
    call, or remove ``"/tires/pressure"`` from ``capabilities`` to get a 501).
    Drifting quantities (``odometer_km``, ``battery_level``, ``fuel_level``,
    ``location``) catch up with the emulator clock when read.

    Units are metric throughout; levels and the charge limit are fractions 0..1.

    Added in 0.1.0.
    """

    id: str
    make: str
    """Upper case, as the API reports it (``"TESLA"``); make-specific paths use lower case."""
    model: str
    year: int
    vin: str
    powertrain: Powertrain
    user_id: str
    capabilities: set[str]
    """Endpoint paths this vehicle supports (e.g. ``"/battery"``); others answer 501."""
    battery_capacity_kwh: float | None
    tank_capacity_liters: float | None

    is_locked: bool = True
    open_doors: set[str] = attrs.field(factory=set)
    """Door names (``"frontLeft"`` ...) that are open: locking then fails with DOOR_OPEN."""
    has_sunroof: bool = False
    charge_limit: float = 0.9
    is_plugged_in: bool = False
    is_charging: bool = False
    charge_power_kw: float = 7.7
    charge_amperage: float = 32.0
    charge_voltage: float = 240.0
    tire_pressure_kpa: dict[str, float] = attrs.field(factory=dict)
    oil_life: float = 1.0
    exterior_temperature_c: float = 18.0
    interior_temperature_c: float = 21.0
    climate_on: bool = False
    connected: bool = True
    """False once the vehicle is disconnected (DELETE /application or the Management API)."""
    connected_at: float = 0.0
    webhooks: set[str] = attrs.field(factory=set)
    destination: tuple[float, float] | None = None
    service_records: list[dict[str, Any]] = attrs.field(factory=list)
    dtcs: list[dict[str, Any]] = attrs.field(factory=list)
    home: tuple[float, float] = (37.7749, -122.4194)
    loop_radius_km: float = 5.0
    average_speed_kmh: float = 20.0
    km_per_kwh: float = 6.0
    km_per_liter: float = 12.0
    data_lag_seconds: float = 30.0
    system_alerts: dict[str, str] = attrs.field(factory=dict)
    """Diagnostic systems in ALERT, with their description."""
    extra: dict[str, Any] = attrs.field(factory=dict)
    """Make-specific state (charge schedules, Tesla settings ...), keyed by feature."""

    _clock: Clock = attrs.field(alias="clock", repr=False)
    _odometer_km: float = attrs.field(alias="odometer_km", default=10_000.0)
    _battery_level: float = attrs.field(alias="battery_level", default=0.0)
    _fuel_level: float = attrs.field(alias="fuel_level", default=0.0)
    _trip_km: float = attrs.field(init=False, default=0.0)
    _synced_at: float = attrs.field(init=False, default=0.0)
    # A threaded emulator's server and the test thread may both catch a vehicle up.
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock, repr=False)

    def __attrs_post_init__(self) -> None:
        self._synced_at = self._clock.now()

    # -- drifting state ---------------------------------------------------

    @property
    def has_battery(self) -> bool:
        return self.battery_capacity_kwh is not None

    @property
    def has_tank(self) -> bool:
        return self.tank_capacity_liters is not None

    @property
    def odometer_km(self) -> float:
        self.advance()
        return self._odometer_km

    @odometer_km.setter
    def odometer_km(self, value: float) -> None:
        self.advance()
        self._odometer_km = value

    @property
    def battery_level(self) -> float:
        self.advance()
        return self._battery_level

    @battery_level.setter
    def battery_level(self, value: float) -> None:
        self.advance()
        self._battery_level = value

    @property
    def fuel_level(self) -> float:
        self.advance()
        return self._fuel_level

    @fuel_level.setter
    def fuel_level(self, value: float) -> None:
        self.advance()
        self._fuel_level = value

    @property
    def location(self) -> tuple[float, float]:
        """Latitude and longitude: a loop around ``home`` parametrised by distance driven."""
        self.advance()
        angle = self._trip_km / self.loop_radius_km
        lat0, lon0 = self.home
        dlat = self.loop_radius_km / 111.32 * math.sin(angle)
        dlon = self.loop_radius_km / (111.32 * math.cos(math.radians(lat0))) * (1 - math.cos(angle))
        return round(lat0 + dlat, 6), round(lon0 + dlon, 6)

    @property
    def heading(self) -> float:
        """Direction of travel, degrees clockwise from north (tangent to the loop)."""
        self.advance()
        return round(math.degrees(self._trip_km / self.loop_radius_km) % 360.0, 1)

    @property
    def is_moving(self) -> bool:
        self.advance()
        return self._can_drive()

    @property
    def charge_state(self) -> str:
        """``CHARGING``, ``FULLY_CHARGED`` or ``NOT_CHARGING``, as the charge endpoint reports."""
        self.advance()
        if not self.has_battery or not self.is_plugged_in:
            return "NOT_CHARGING"
        if self.is_charging and self._battery_level >= self.charge_limit:
            # The limit was lowered below the current level: charging stops at once.
            self.is_charging = False
        if self.is_charging:
            return "CHARGING"
        if self._battery_level >= self.charge_limit - 0.005:
            return "FULLY_CHARGED"
        return "NOT_CHARGING"

    def battery_range_km(self) -> float:
        cap = self.battery_capacity_kwh or 0.0
        return self.battery_level * cap * self.km_per_kwh

    def fuel_range_km(self) -> float:
        tank = self.tank_capacity_liters or 0.0
        return self.fuel_level * tank * self.km_per_liter

    def seconds_to_full(self) -> float | None:
        """Seconds until the charge limit is reached, or None when not charging."""
        if self.charge_state != "CHARGING" or not self.battery_capacity_kwh:
            return None
        missing = max(0.0, self.charge_limit - self._battery_level)
        return missing * self.battery_capacity_kwh / self.charge_power_kw * 3600.0

    def _can_drive(self) -> bool:
        if self.is_plugged_in:
            return False
        if self.has_tank:
            return True
        return self._battery_level > _MIN_DRIVING_LEVEL

    def advance(self) -> None:
        """Integrate driving and charging up to the emulator clock's now."""
        with self._lock:
            self._advance_to(self._clock.now())

    def _advance_to(self, now: float) -> None:
        dt = now - self._synced_at
        if dt <= 0:
            return
        self._synced_at = now
        cap = self.battery_capacity_kwh
        if self.is_plugged_in:
            if self.is_charging and cap and self._battery_level < self.charge_limit:
                gained = self.charge_power_kw * dt / 3600.0 / cap
                self._battery_level = min(self.charge_limit, self._battery_level + gained)
            if self._battery_level >= self.charge_limit:
                self.is_charging = False
            return
        self.is_charging = False
        wanted = self.average_speed_kmh * dt / 3600.0
        driven = 0.0
        if cap:
            electric_km = max(0.0, self._battery_level - _MIN_DRIVING_LEVEL) * cap * self.km_per_kwh
            on_battery = min(wanted, electric_km)
            self._battery_level -= on_battery / self.km_per_kwh / cap
            driven += on_battery
        tank = self.tank_capacity_liters
        if tank and wanted > driven:
            liters = self._fuel_level * tank - (wanted - driven) / self.km_per_liter
            reserve = _MIN_DRIVING_LEVEL * tank
            if liters < reserve:
                # The driver tops up at the reserve; model each fill-up as a full tank.
                usable = tank - reserve
                liters += math.ceil((reserve - liters) / usable) * usable
            self._fuel_level = min(1.0, liters / tank)
            driven = wanted
        self._odometer_km += driven
        self._trip_km += driven


@attrs.define(eq=False)
class Fleet:
    """The emulator's vehicles. ``vehicles`` keeps generation order; ``get`` looks up by id.

    Added in 0.1.0.
    """

    vehicles: list[SimulatedVehicle]
    users: list[str]
    _by_id: dict[str, SimulatedVehicle] = attrs.field(init=False)
    _by_vin: dict[str, SimulatedVehicle] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._by_id = {v.id: v for v in self.vehicles}
        self._by_vin = {v.vin: v for v in self.vehicles}

    @property
    def ids(self) -> list[str]:
        return [v.id for v in self.vehicles]

    def get(self, vehicle_id: str) -> SimulatedVehicle | None:
        return self._by_id.get(vehicle_id)

    def by_vin(self, vin: str) -> SimulatedVehicle | None:
        return self._by_vin.get(vin.upper())

    def __len__(self) -> int:
        return len(self.vehicles)

    def __iter__(self) -> Iterator[SimulatedVehicle]:
        return iter(self.vehicles)

    def __getitem__(self, index: int) -> SimulatedVehicle:
        return self.vehicles[index]

    def with_powertrain(self, powertrain: Powertrain) -> list[SimulatedVehicle]:
        return [v for v in self.vehicles if v.powertrain == powertrain]

    def with_make(self, make: str) -> list[SimulatedVehicle]:
        return [v for v in self.vehicles if v.make == make.upper()]


def generate_fleet(
    count: int,
    seed: int,
    clock: Clock,
    capabilities: Callable[[str, Powertrain], set[str]],
) -> Fleet:
    """Build ``count`` vehicles deterministically from ``seed``."""
    if count < 0:
        raise ValueError("vehicles must be >= 0")
    rng = random.Random(seed)
    user_count = max(1, (count + 2) // 3)
    users = [_uuid(rng) for _ in range(user_count)]
    by_name = {(s.make, s.model): s for s in CATALOGUE}
    pools = {pt: [s for s in CATALOGUE if s.powertrain == pt] for pt, _ in _POWERTRAIN_WEIGHTS}
    wall = clock.wall()
    vehicles: list[SimulatedVehicle] = []
    for index in range(count):
        if index < len(_PRIMER):
            spec = by_name[_PRIMER[index]]
        else:
            powertrain = rng.choices(
                [pt for pt, _ in _POWERTRAIN_WEIGHTS], [w for _, w in _POWERTRAIN_WEIGHTS]
            )[0]
            spec = rng.choice(pools[powertrain])
        vehicles.append(
            _make_vehicle(rng, spec, users[index % user_count], clock, wall, capabilities)
        )
    return Fleet(vehicles, users)


def _make_vehicle(
    rng: random.Random,
    spec: ModelSpec,
    user_id: str,
    clock: Clock,
    wall: float,
    capabilities: Callable[[str, Powertrain], set[str]],
) -> SimulatedVehicle:
    vehicle_id = _uuid(rng)
    year = rng.randint(*spec.years)
    age_years = max(0, 2025 - year)
    odometer = round(rng.uniform(2_000, 15_000) * (age_years + 0.5), 1)
    has_battery = spec.battery_kwh is not None
    plugged = has_battery and rng.random() < 0.35
    battery_level = round(rng.uniform(0.2, 0.9), 3) if has_battery else 0.0
    charge_limit = rng.choice((0.8, 0.9, 1.0))
    charging = plugged and battery_level < charge_limit and rng.random() < 0.5
    home_lat, home_lon = rng.choice(_HOMES)
    home = (
        round(home_lat + rng.uniform(-0.05, 0.05), 6),
        round(home_lon + rng.uniform(-0.05, 0.05), 6),
    )
    kpa = spec.tire_kpa
    tires = {
        name: round(kpa + rng.uniform(-8.0, 4.0), 1)
        for name in ("frontLeft", "frontRight", "backLeft", "backRight")
    }
    dtcs, alerts = _dtcs(rng, wall)
    return SimulatedVehicle(
        id=vehicle_id,
        make=spec.make,
        model=spec.model,
        year=year,
        vin=_vin(rng, spec.make, year),
        powertrain=spec.powertrain,
        user_id=user_id,
        capabilities=capabilities(spec.make, spec.powertrain),
        battery_capacity_kwh=spec.battery_kwh,
        tank_capacity_liters=spec.tank_liters,
        is_locked=rng.random() < 0.8,
        has_sunroof=spec.sunroof,
        charge_limit=charge_limit,
        is_plugged_in=plugged,
        is_charging=charging,
        charge_power_kw=rng.choice((7.7, 9.6, 11.0)),
        charge_amperage=rng.choice((32.0, 40.0, 48.0)),
        tire_pressure_kpa=tires,
        oil_life=round(rng.uniform(0.05, 1.0), 2) if spec.tank_liters else 1.0,
        exterior_temperature_c=round(rng.uniform(-5.0, 30.0), 1),
        interior_temperature_c=round(rng.uniform(15.0, 26.0), 1),
        connected_at=wall - rng.uniform(1, 400) * 86_400,
        service_records=_service_records(rng, wall, odometer),
        dtcs=dtcs,
        system_alerts=alerts,
        home=home,
        loop_radius_km=round(rng.uniform(3.0, 8.0), 2),
        average_speed_kmh=round(rng.uniform(12.0, 30.0), 1),
        km_per_kwh=round(rng.uniform(5.0, 7.0), 2),
        km_per_liter=round(rng.uniform(8.0, 16.0), 2),
        data_lag_seconds=round(rng.uniform(1.0, 120.0), 3),
        clock=clock,
        odometer_km=odometer,
        battery_level=battery_level,
        fuel_level=round(rng.uniform(0.15, 1.0), 3) if spec.tank_liters else 0.0,
    )


def _dtcs(rng: random.Random, wall: float) -> tuple[list[dict[str, Any]], dict[str, str]]:
    codes: list[dict[str, Any]] = []
    alerts: dict[str, str] = {}
    for code, system in rng.sample(_DTC_POOL, rng.choice((0, 0, 1, 2))):
        seen = wall - rng.uniform(1, 90) * 86_400
        codes.append({"code": code, "timestamp": iso(seen) if rng.random() < 0.8 else None})
        alerts[system] = f"Diagnostic trouble code {code} is active"
    return codes, alerts


def _service_records(rng: random.Random, wall: float, odometer: float) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    days = sorted((rng.uniform(10, 1_000) for _ in range(rng.randint(2, 6))), reverse=True)
    for number, days_ago in enumerate(days):
        tasks = rng.sample(_SERVICE_TASKS, rng.randint(1, 3))
        cost = wire(round(rng.uniform(40, 600), 2)) if rng.random() < 0.7 else None
        records.append(
            {
                "serviceId": str(100_000 + number) if rng.random() < 0.6 else None,
                "odometerDistance": wire(round(max(0.0, odometer - days_ago * 40.0), 2)),
                "serviceDate": iso(wall - days_ago * 86_400),
                "serviceTasks": [{"taskId": t, "taskDescription": d} for t, d in tasks],
                "serviceDetails": [{"type": "Dealer", "value": "Emulated Service Center"}],
                "serviceCost": {
                    "totalCost": cost,
                    "currency": "USD" if cost is not None else None,
                },
            }
        )
    return records


def system_statuses(vehicle: SimulatedVehicle) -> Sequence[dict[str, Any]]:
    alerts = vehicle.system_alerts
    return [
        {"systemId": s, "status": "ALERT" if s in alerts else "OK", "description": alerts.get(s)}
        for s in _SYSTEMS
    ]
