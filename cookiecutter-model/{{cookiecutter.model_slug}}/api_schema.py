{%- set dataset = "diabetes" if cookiecutter.task == "regression" else cookiecutter.__dataset -%}
{%- if cookiecutter.input == "text" -%}
"""The API contract of {{ cookiecutter.model_slug }}: what a request row is and what a prediction is.

A row is one message (any language, any Unicode) of at most `serving.max_text_chars` characters (config.yaml):
a longer one is refused with 400 naming the field. `train.py` reads the field names from here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from modelkit import load_config

CLASS_NAMES = ("acceptable", "abusive")
MAX_CHARS = load_config(Path(__file__).with_name("config.yaml")).serving.max_text_chars


class Features(BaseModel):
    """One message to moderate."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(strict=True, min_length=1, max_length=MAX_CHARS, description="the message")]


FEATURES: tuple[str, ...] = tuple(Features.model_fields)


class Prediction(BaseModel):
    """The prediction for one row, in request order."""

    label: str = Field(description="the most likely class")
    class_id: int = Field(description="index of `label` in the model's classes")
    probabilities: dict[str, float] = Field(description="probability of every class; sums to 1")
{%- elif cookiecutter.input == "entity" -%}
"""The API contract of {{ cookiecutter.model_slug }}: a request row is a customer id.

The service looks each id up in the online store of the monorepo's shared feature repository (shared/feature_repo,
through modelkit.features): an id the store holds no features for gets 404 naming it, never a 5xx. `train.py` joins
the same features from the offline store as they were at each label's time (point-in-time correct).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

CLASS_NAMES = ("stays", "churns")
ENTITY_KEY = "customer_id"  # the entity's join key in the feature repository
# What the model reads, in this order: `feature view:feature` of shared/feature_repo/definitions.py.
FEATURE_REFS: tuple[str, ...] = (
    "customer_stats:tenure_months",
    "customer_stats:monthly_spend",
    "customer_stats:support_tickets_30d",
    "customer_stats:logins_30d",
)
FEATURE_NAMES: tuple[str, ...] = tuple(reference.split(":", 1)[1] for reference in FEATURE_REFS)


class Features(BaseModel):
    """One customer, by id."""

    model_config = ConfigDict(extra="forbid")

    # strict: "1042" (a string) is refused, not coerced. Any positive 32-bit id is valid; one the store does not
    # hold is answered with 404.
    customer_id: Annotated[int, Field(strict=True, ge=1, le=2_147_483_647, description="the customer's id")]


FEATURES: tuple[str, ...] = tuple(Features.model_fields)


class Prediction(BaseModel):
    """The prediction for one row, in request order."""

    label: str = Field(description="the most likely outcome")
    class_id: int = Field(description="index of `label` in the model's classes")
    probabilities: dict[str, float] = Field(description="probability of every class; sums to 1")
{%- elif cookiecutter.input == "image" -%}
"""The API contract of {{ cookiecutter.model_slug }}: what a request row is and what a prediction is.

A row is one image, base64-encoded in JSON, of a format in `serving.image_formats`, at most
`serving.max_image_bytes` bytes and `serving.max_image_pixels` pixels (config.yaml): anything else (not base64,
not an image, another format, too big, a decompression bomb) is refused with 400 naming the field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from modelkit import load_config
from modelkit.images import ImageLimits, base64_image, image_file

CLASS_NAMES = tuple(str(digit) for digit in range(10))
LIMITS = ImageLimits.of(load_config(Path(__file__).with_name("config.yaml")))
SIZE = (8, 8)  # (width, height) the model reads: scikit-learn's digits, 0 (black) to 16 (white)
Image = base64_image(LIMITS)
ImageFile = image_file(LIMITS, "one picture of a handwritten digit, white on black")  # POST /predict_file


class Features(BaseModel):
    """One picture of a handwritten digit, white on black."""

    model_config = ConfigDict(extra="forbid")

    image: Image


FEATURES: tuple[str, ...] = tuple(Features.model_fields)


class Prediction(BaseModel):
    """The prediction for one row, in request order."""

    label: str = Field(description="the most likely digit")
    class_id: int = Field(description="index of `label` in the model's classes")
    probabilities: dict[str, float] = Field(description="probability of every class; sums to 1")
{%- else -%}
"""The API contract of {{ cookiecutter.model_slug }}: what a request row is and what a prediction is.

`train.py` reads feature names from here too, so training and serving can never disagree
on columns.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

{% if dataset == "iris" -%}
CLASS_NAMES = ("setosa", "versicolor", "virginica")

# strict: "5.1" (a string) is refused, not coerced; NaN and Infinity are refused.
Centimetres = Annotated[float, Field(strict=True, ge=0, le=100, allow_inf_nan=False)]


class Features(BaseModel):
    """One flower, measured in centimetres."""

    model_config = ConfigDict(extra="forbid")

    sepal_length: Centimetres
    sepal_width: Centimetres
    petal_length: Centimetres
    petal_width: Centimetres
{%- elif dataset == "wine" -%}
CLASS_NAMES = ("class_0", "class_1", "class_2")

# strict: "13.2" (a string) is refused, not coerced; NaN and Infinity are refused.
Measure = Annotated[float, Field(strict=True, ge=0, le=10_000, allow_inf_nan=False)]


class Features(BaseModel):
    """One wine: the results of a chemical analysis (UCI wine data set)."""

    model_config = ConfigDict(extra="forbid")

    alcohol: Measure
    malic_acid: Measure
    ash: Measure
    alcalinity_of_ash: Measure
    magnesium: Measure
    total_phenols: Measure
    flavanoids: Measure
    nonflavanoid_phenols: Measure
    proanthocyanins: Measure
    color_intensity: Measure
    hue: Measure
    od280_od315_of_diluted_wines: Measure
    proline: Measure
{%- else -%}
# strict: "59" (a string) is refused, not coerced; NaN and Infinity are refused.
Measure = Annotated[float, Field(strict=True, ge=0, le=1000, allow_inf_nan=False)]


class Features(BaseModel):
    """One patient at baseline (scikit-learn's diabetes data set, unscaled)."""

    model_config = ConfigDict(extra="forbid")

    age: Annotated[Measure, Field(description="years")]
    sex: Annotated[Measure, Field(description="1 or 2")]
    bmi: Annotated[Measure, Field(description="body mass index")]
    bp: Annotated[Measure, Field(description="average blood pressure")]
    s1: Annotated[Measure, Field(description="tc, total serum cholesterol")]
    s2: Annotated[Measure, Field(description="ldl, low-density lipoproteins")]
    s3: Annotated[Measure, Field(description="hdl, high-density lipoproteins")]
    s4: Annotated[Measure, Field(description="tch, total cholesterol / HDL")]
    s5: Annotated[Measure, Field(description="ltg, log of serum triglycerides")]
    s6: Annotated[Measure, Field(description="glu, blood sugar level")]
{%- endif %}


FEATURES: tuple[str, ...] = tuple(Features.model_fields)


{% if cookiecutter.task == "regression" -%}
class Prediction(BaseModel):
    """The prediction for one row, in request order."""

    value: float = Field(description="the predicted disease progression one year after baseline")
{%- else -%}
class Prediction(BaseModel):
    """The prediction for one row, in request order."""

    label: str = Field(description="the most likely class")
    class_id: int = Field(description="index of `label` in the model's classes")
    probabilities: dict[str, float] = Field(description="probability of every class; sums to 1")
{%- endif %}
{%- endif %}
