"""The seed notebook's network, loss, metrics and optimizer, in the notebook's own code
(../shared/reference/seed-notebook.txt, cells "Network" and "Train network"), for today's Keras 3
on TensorFlow. Imported by keras_steps.py, keras_outcome.py and peers_speed.py.

Changes from the notebook, each one forced by current Keras (nothing else is changed):
  1. `keras.layers.LeakyReLU(0)`: unchanged in form; Keras 3 names the argument negative_slope and
     still takes it positionally, so the call is the notebook's.
  2. `model.fit_generator(...)` no longer exists: callers use `model.fit` / `train_on_batch`.
  3. BatchNormalization's moving variance: the notebook's tf.keras (TF 1.x/2.x) trained with
     fused batch norm, whose moving average takes the batch variance WITH Bessel's correction
     (M/(M-1), `_bessels_correction_test_only = True`); Keras 3 takes the biased variance.
     `NotebookBatchNormalization` restores the notebook's update when `bessel=True` (the step
     parity run reports both); the forward pass and every gradient are Keras 3's own.
  4. 'accuracy' with a custom loss: Keras 3 resolves it from the output shape (last axis 1 ->
     binary accuracy, threshold 0.5), as Keras 2 did for a sigmoid output; unchanged in form.
"""
import numpy as np
import tensorflow as tf
from tensorflow import keras


class NotebookBatchNormalization(keras.layers.BatchNormalization):
    """Keras 3 BatchNormalization whose training-mode moving variance uses the unbiased batch
    variance, as the notebook's fused tf.keras batch norm did (change 3)."""

    bessel = True

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and NotebookBatchNormalization.bessel):
            return super().call(inputs, training=training, mask=mask)
        old_variance = tf.identity(self.moving_variance)
        outputs = super().call(inputs, training=training, mask=mask)
        # super() did moving = m*old + (1-m)*biased; redo it with the unbiased variance.
        _, biased = tf.nn.moments(tf.cast(inputs, tf.float32), axes=[0, 1, 2])
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
        unbiased = biased * count / (count - 1.0)
        self.moving_variance.assign(old_variance * self.momentum + unbiased * (1.0 - self.momentum))
        return outputs


# ---- the notebook's cell "Network", verbatim except BatchNormalization -> the class above ----
BatchNormalization = NotebookBatchNormalization


def create_downsample(channels, inputs):
    x = BatchNormalization(momentum=0.9)(inputs)
    x = keras.layers.LeakyReLU(0)(x)
    x = keras.layers.Conv2D(channels, 1, padding='same', use_bias=False)(x)
    x = keras.layers.MaxPool2D(2)(x)
    return x


def create_resblock(channels, inputs):
    x = BatchNormalization(momentum=0.9)(inputs)
    x = keras.layers.LeakyReLU(0)(x)
    x = keras.layers.Conv2D(channels, 3, padding='same', use_bias=False)(x)
    x = BatchNormalization(momentum=0.9)(x)
    x = keras.layers.LeakyReLU(0)(x)
    x = keras.layers.Conv2D(channels, 3, padding='same', use_bias=False)(x)
    return keras.layers.add([x, inputs])


def create_network(input_size, channels, n_blocks=2, depth=4):
    # input
    inputs = keras.Input(shape=(input_size, input_size, 1))
    x = keras.layers.Conv2D(channels, 3, padding='same', use_bias=False)(inputs)
    # residual blocks
    for d in range(depth):
        channels = channels * 2
        x = create_downsample(channels, x)
        for b in range(n_blocks):
            x = create_resblock(channels, x)

    # output
    x = BatchNormalization(momentum=0.9)(x)
    x = keras.layers.LeakyReLU(0)(x)
    x = keras.layers.Conv2D(1, 1, activation='sigmoid')(x)
    outputs = keras.layers.UpSampling2D(2**(depth))(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    return model


# ---- the notebook's cell "Train network": loss, metric, compile, schedule, verbatim ----
# define iou or jaccard loss function
def iou_loss(y_true, y_pred):
    y_true = tf.reshape(y_true, [-1])
    y_pred = tf.reshape(y_pred, [-1])
    intersection = tf.reduce_sum(y_true * y_pred)
    score = (intersection + 1.) / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred) - intersection + 1.)
    return 1 - score


# combine bce loss and iou loss
def iou_bce_loss(y_true, y_pred):
    return 0.5 * keras.losses.binary_crossentropy(y_true, y_pred) + 0.5 * iou_loss(y_true, y_pred)


# mean iou as a metric
def mean_iou(y_true, y_pred):
    y_pred = tf.round(y_pred)
    intersect = tf.reduce_sum(y_true * y_pred, axis=[1, 2, 3])
    union = tf.reduce_sum(y_true, axis=[1, 2, 3]) + tf.reduce_sum(y_pred, axis=[1, 2, 3])
    smooth = tf.ones(tf.shape(intersect))
    return tf.reduce_mean((intersect + smooth) / (union - intersect + smooth))


def compile_notebook_model(model, learning_rate=None):
    """model.compile as the notebook (optimizer='adam': Keras's Adam, lr 1e-3, epsilon 1e-7);
    learning_rate sets the Adam's rate when a preset other than the notebook's is run."""
    optimizer = 'adam' if learning_rate is None else keras.optimizers.Adam(learning_rate=learning_rate)
    model.compile(optimizer=optimizer,
                  loss=iou_bce_loss,
                  metrics=['accuracy', mean_iou])
    return model


def cosine_annealing_for(lr, epochs):
    # the notebook's cosine_annealing with its two constants as parameters
    def cosine_annealing(x):
        return lr*(np.cos(np.pi*x/epochs)+1.)/2
    return cosine_annealing


# ---- pneumo's names <-> Keras layers -------------------------------------------------------
def pneumo_layer_names(n_blocks, depth):
    """The layers with weights in pneumo's node order (layers/network.h): conv0; per depth d
    down<d>.bn, down<d>.conv, then per block b block<d>_<b>.bn1, .conv1, .bn2, .conv2; head.bn,
    head.conv. create_network creates its Conv2D and BatchNormalization layers in exactly this
    order, so the i-th weighted Keras layer in creation order is the i-th name here."""
    names = ["conv0"]
    for d in range(1, depth + 1):
        names += [f"down{d}.bn", f"down{d}.conv"]
        for b in range(1, n_blocks + 1):
            names += [f"block{d}_{b}.bn1", f"block{d}_{b}.conv1", f"block{d}_{b}.bn2", f"block{d}_{b}.conv2"]
    return names + ["head.bn", "head.conv"]


def weighted_layers(model):
    """Conv2D and BatchNormalization layers of the model in creation order (Keras numbers auto
    names by creation: conv2d, conv2d_1, ...; the functional model lists them topologically, which
    for this graph is the same order; the assertion in map_layers checks shapes)."""
    return [layer for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization))]


def map_layers(model, n_blocks, depth):
    names = pneumo_layer_names(n_blocks, depth)
    layers = weighted_layers(model)
    assert len(names) == len(layers), (len(names), len(layers))
    for name, layer in zip(names, layers):
        is_bn = name.split(".")[-1].startswith("bn")
        assert is_bn == isinstance(layer, keras.layers.BatchNormalization), (name, layer.name)
    return list(zip(names, layers))


def set_pneumo_weights(model, tensors, n_blocks, depth, prefix=""):
    """Loads pneumo tensors ({name: numpy}) into the Keras model.
    Conv weight (K,R,S,C) -> Keras kernel (R,S,C,K): transpose(1, 2, 3, 0); head.conv.bias -> bias.
    BN gamma, beta, running_mean, running_var -> gamma, beta, moving_mean, moving_variance."""
    for name, layer in map_layers(model, n_blocks, depth):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([tensors[prefix + name + "." + field]
                               for field in ("gamma", "beta", "running_mean", "running_var")])
        else:
            weights = [tensors[prefix + name + ".weight"].transpose(1, 2, 3, 0)]
            if layer.use_bias:
                weights.append(tensors[prefix + name + ".bias"])
            layer.set_weights(weights)


def get_pneumo_weights(model, n_blocks, depth):
    """The inverse of set_pneumo_weights: {pneumo name: numpy in pneumo's layout}."""
    out = {}
    for name, layer in map_layers(model, n_blocks, depth):
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            for field, value in zip(("gamma", "beta", "running_mean", "running_var"), weights):
                out[name + "." + field] = value
        else:
            out[name + ".weight"] = weights[0].transpose(3, 0, 1, 2)
            if layer.use_bias:
                out[name + ".bias"] = weights[1]
    return out
